import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Me } from "../api/types";
import { ALICE } from "../test/fixtures";
import { openAt } from "../test/render";
import { apiError, fakeServer } from "../test/server";

const WALLET_USER: Me = { ...ALICE, key_kind: "wallet" };
const NONCE = {
  nonce: "0123456789abcdef0123456789abcdef",
  domain: "portal.test",
  chain_id: 31337,
  uri: "http://portal.test/",
  issued_at: "2026-12-01T10:00:00Z",
  expires_at: "2026-12-01T10:10:00Z",
};

function signedOutWithWallet(personalSign: () => string) {
  let signedIn = false;
  fakeServer
    .on("GET", "/api/me", () => (signedIn ? { body: WALLET_USER } : { status: 401, body: apiError("not_authenticated", "Not signed in.") }))
    .on("GET", "/api/auth/csrf", () => {
      document.cookie = "csrftoken=tok-1; path=/";
      return { body: { csrf_token: "tok-1" } };
    })
    .on("GET", "/api/auth/siwe/nonce", { body: NONCE })
    .on("POST", "/api/auth/siwe/verify", () => {
      signedIn = true;
      return { body: WALLET_USER };
    })
    .on("GET", "/api/consents", { body: { count: 0, results: [] } });
  (window as { ethereum?: unknown }).ethereum = {
    request: async ({ method }: { method: string }) => {
      if (method === "eth_requestAccounts") return [ALICE.eth_address];
      if (method === "eth_chainId") return "0x7a69";
      if (method === "personal_sign") return personalSign();
      throw Object.assign(new Error(method), { code: 4200 });
    },
  };
}

describe("sign in with Ethereum", () => {
  afterEach(() => {
    delete (window as { ethereum?: unknown }).ethereum;
  });

  it("signs the site's message in the wallet and goes on to the page that was asked for", async () => {
    signedOutWithWallet(() => `0x${"34".repeat(65)}`);
    const { user } = openAt("/consents");
    await user.click(await screen.findByRole("button", { name: "Sign in with Ethereum" }));
    await screen.findByRole("heading", { name: "My consents" }, { timeout: 5000 });
    const verify = fakeServer.sent.find((r) => r.path === "/api/auth/siwe/verify");
    expect((verify?.body as { message: string }).message).toMatch(/^portal\.test wants you to sign in with your Ethereum account:\n/);
  });

  it("says so when the user cancels in the wallet, and stays signed out", async () => {
    signedOutWithWallet(() => {
      throw Object.assign(new Error("User rejected the request."), { code: 4001 });
    });
    const { user } = openAt("/sign-in");
    await user.click(await screen.findByRole("button", { name: "Sign in with Ethereum" }));
    expect(await screen.findByRole("alert", {}, { timeout: 5000 })).toHaveTextContent("You cancelled the sign-in in your wallet: nothing was signed and you are not signed in.");
    expect(fakeServer.sent.some((r) => r.path === "/api/auth/siwe/verify")).toBe(false);
  });

  it("says so when the browser has no wallet", async () => {
    signedOutWithWallet(() => "");
    delete (window as { ethereum?: unknown }).ethereum;
    const { user } = openAt("/sign-in");
    await user.click(await screen.findByRole("button", { name: "Sign in with Ethereum" }));
    expect(await screen.findByRole("alert", {}, { timeout: 5000 })).toHaveTextContent("No wallet was found in this browser.");
  });
});
