import { describe, expect, it, vi } from "vitest";
import { apiError, fakeServer } from "../test/server";
import { api, ApiError, call, NetworkError, setSignedOutHandler } from "./client";

describe("the API client", () => {
  it("sends the current CSRF cookie on unsafe requests only", async () => {
    document.cookie = "csrftoken=first; path=/";
    fakeServer.on("GET", "/api/me", { status: 200, body: {} }).on("POST", "/api/auth/logout", { status: 204 });
    await call(api.GET("/api/me"));
    document.cookie = "csrftoken=rotated; path=/";
    await call(api.POST("/api/auth/logout"));
    expect(fakeServer.sent[0]?.headers.get("X-CSRFToken")).toBeNull();
    expect(fakeServer.sent[1]?.headers.get("X-CSRFToken")).toBe("rotated");
  });

  it("turns the error shape into an ApiError with code, words and field", async () => {
    fakeServer.on("POST", "/api/auth/login", { status: 400, body: apiError("required", "This field is required.", "username") });
    const failure = await call(api.POST("/api/auth/login", { body: { username: "", password: "x" } })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure).toMatchObject({ status: 400, code: "required", field: "username", message: "This field is required." });
  });

  it("calls a lost connection and a gateway error a NetworkError", async () => {
    fakeServer.on("GET", "/api/me", "network-error");
    await expect(call(api.GET("/api/me"))).rejects.toBeInstanceOf(NetworkError);
    fakeServer.on("GET", "/api/me", () => ({ status: 502, body: "Bad gateway" }));
    await expect(call(api.GET("/api/me"))).rejects.toBeInstanceOf(NetworkError);
  });

  it("tells the session when the server says nobody is signed in, not on a wrong password", async () => {
    const signedOut = vi.fn();
    setSignedOutHandler(signedOut);
    fakeServer.on("POST", "/api/auth/login", { status: 401, body: apiError("bad_credentials", "Wrong.") });
    await call(api.POST("/api/auth/login", { body: { username: "a", password: "b" } })).catch(() => undefined);
    expect(signedOut).not.toHaveBeenCalled();
    fakeServer.on("GET", "/api/me", { status: 401, body: apiError("not_authenticated", "Sign in.") });
    await call(api.GET("/api/me")).catch(() => undefined);
    expect(signedOut).toHaveBeenCalledOnce();
    setSignedOutHandler(null);
  });
});
