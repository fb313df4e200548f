import { screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ALICE } from "../test/fixtures";
import { openAt } from "../test/render";
import { apiError, fakeServer } from "../test/server";

function signedOut() {
  fakeServer
    .on("GET", "/api/me", { status: 401, body: apiError("not_authenticated", "Authentication credentials were not provided.") })
    .on("GET", "/api/auth/csrf", () => {
      document.cookie = "csrftoken=tok-1; path=/";
      return { body: { csrf_token: "tok-1" } };
    });
}

describe("sign in", () => {
  it("sends a signed-out visitor to sign-in, then back to the page they asked for", async () => {
    signedOut();
    fakeServer.on("POST", "/api/auth/login", { body: ALICE }).on("GET", "/api/consents", { body: { count: 0, results: [] } });
    const { user } = openAt("/consents");
    await screen.findByRole("heading", { name: "Sign in" });
    expect(window.location.search).toBe("?next=%2Fconsents");

    await user.type(screen.getByLabelText("Username"), "alice");
    await user.type(screen.getByLabelText("Password"), "secret");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    await screen.findByRole("heading", { name: "My consents" });
    expect(window.location.pathname).toBe("/consents");
    const login = fakeServer.sent.find((r) => r.path === "/api/auth/login");
    expect(login?.body).toEqual({ username: "alice", password: "secret" });
    expect(login?.headers.get("X-CSRFToken")).toBe("tok-1");
  });

  it("refuses an empty form in the page, next to each field", async () => {
    signedOut();
    const { user } = openAt("/sign-in");
    await user.click(await screen.findByRole("button", { name: "Sign in" }));
    expect(screen.getByLabelText("Username")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Username")).toHaveAccessibleDescription("Enter your username.");
    expect(screen.getByLabelText("Password")).toHaveAccessibleDescription("Enter your password.");
    expect(fakeServer.sent.some((r) => r.path === "/api/auth/login")).toBe(false);
  });

  it("says wrong credentials in words", async () => {
    signedOut();
    fakeServer.on("POST", "/api/auth/login", { status: 401, body: apiError("bad_credentials", "Unknown username or wrong password.") });
    const { user } = openAt("/sign-in");
    await user.type(await screen.findByLabelText("Username"), "alice");
    await user.type(screen.getByLabelText("Password"), "nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Unknown username or wrong password.");
    expect(window.location.pathname).toBe("/sign-in");
  });

  it("offers a retry when the server cannot be reached, and recovers", async () => {
    let up = false;
    fakeServer.on("GET", "/api/me", () => (up ? { body: ALICE } : "network-error"));
    fakeServer.on("GET", "/api/records", { body: { count: 0, next: null, previous: null, results: [] } });
    const { user } = openAt("/records");
    expect(await screen.findByRole("alert")).toHaveTextContent("Connection lost");
    up = true;
    await user.click(screen.getByRole("button", { name: "Try again" }));
    await screen.findByRole("heading", { name: "My records" });
  });

  it("returns to sign-in when the session expires, and back after", async () => {
    fakeServer.on("GET", "/api/me", { body: ALICE });
    fakeServer.on("GET", "/api/records", { status: 401, body: apiError("not_authenticated", "Authentication credentials were not provided.") });
    openAt("/records?category=laboratory");
    await screen.findByText("Your session has ended. Sign in again to go back where you were.");
    await waitFor(() => expect(window.location.pathname).toBe("/sign-in"));
    expect(new URLSearchParams(window.location.search).get("next")).toBe("/records?category=laboratory");
  });

  it("signs out", async () => {
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("POST", "/api/auth/logout", { status: 204 });
    fakeServer.on("GET", "/api/records", { body: { count: 0, next: null, previous: null, results: [] } });
    const { user } = openAt("/records");
    await user.click(await screen.findByRole("button", { name: /Sign out/ }));
    await screen.findByRole("heading", { name: "Sign in" });
    expect(fakeServer.sent.some((r) => r.method === "POST" && r.path === "/api/auth/logout")).toBe(true);
  });
});
