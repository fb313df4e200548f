import { describe, expect, it } from "vitest";
import { matchPath } from "./router";
import { safeNext, signInPath } from "./session";

describe("matchPath", () => {
  it("returns the parameters of a matching path", () => {
    expect(matchPath("/records/:id", "/records/abc")).toEqual({ id: "abc" });
    expect(matchPath("/patients/:address", "/patients/0xAbC/")).toEqual({ address: "0xAbC" });
  });

  it("refuses a path of another shape", () => {
    expect(matchPath("/records/:id", "/records")).toBeNull();
    expect(matchPath("/records/:id", "/consents/abc")).toBeNull();
  });
});

describe("sign-in and back", () => {
  it("follows only paths of this site", () => {
    expect(safeNext("/records/abc?x=1")).toBe("/records/abc?x=1");
    expect(safeNext("//evil.example/")).toBeNull();
    expect(safeNext("/\\evil.example")).toBeNull();
    expect(safeNext("https://evil.example/")).toBeNull();
    expect(safeNext("/sign-in?next=/x")).toBeNull();
    expect(safeNext(null)).toBeNull();
  });

  it("carries where the user was and that the session expired", () => {
    expect(signInPath("/records/abc", true)).toBe("/sign-in?next=%2Frecords%2Fabc&expired=1");
  });
});
