import { getAddress, type EIP1193Provider } from "viem";
import { describe, expect, it } from "vitest";
import { ALICE } from "../test/fixtures";
import { fakeServer } from "../test/server";
import { SIWE_STATEMENT, signInWithEthereum, siweMessage, type SiweNonce } from "./siwe";

const NONCE: SiweNonce = {
  nonce: "0123456789abcdef0123456789abcdef",
  domain: "portal.test",
  chain_id: 31337,
  uri: "http://portal.test/",
  issued_at: "2026-12-01T10:00:00Z",
  expires_at: "2026-12-01T10:10:00Z",
};
const ADDRESS = "0xa11ce00000000000000000000000000000000001";

describe("the Sign-In with Ethereum message", () => {
  it("carries what the server asked for, in EIP-4361's layout, with the checksummed address", () => {
    expect(siweMessage(NONCE, ADDRESS)).toBe(
      [
        "portal.test wants you to sign in with your Ethereum account:",
        getAddress(ADDRESS),
        "",
        SIWE_STATEMENT,
        "",
        "URI: http://portal.test/",
        "Version: 1",
        "Chain ID: 31337",
        "Nonce: 0123456789abcdef0123456789abcdef",
        "Issued At: 2026-12-01T10:00:00.000Z",
        "Expiration Time: 2026-12-01T10:10:00.000Z",
      ].join("\n"),
    );
  });

  it("is signed with personal_sign and sent to verify with the CSRF token", async () => {
    const signature = `0x${"cd".repeat(65)}`;
    const signed: unknown[] = [];
    const provider = {
      request: async ({ method, params }: { method: string; params?: unknown[] }) => {
        if (method === "eth_requestAccounts") return [ADDRESS];
        if (method === "eth_chainId") return "0x1"; // another chain: the message still says the site's
        if (method === "personal_sign") {
          signed.push(params);
          return signature;
        }
        throw Object.assign(new Error(method), { code: 4200 });
      },
    } as unknown as EIP1193Provider;
    fakeServer
      .on("GET", "/api/auth/siwe/nonce", { body: NONCE })
      .on("GET", "/api/auth/csrf", () => {
        document.cookie = "csrftoken=tok-9; path=/";
        return { body: { csrf_token: "tok-9" } };
      })
      .on("POST", "/api/auth/siwe/verify", { body: ALICE });

    await expect(signInWithEthereum(provider)).resolves.toEqual(ALICE);
    const verify = fakeServer.sent.find((r) => r.path === "/api/auth/siwe/verify");
    const message = siweMessage(NONCE, ADDRESS);
    expect(verify?.body).toEqual({ message, signature });
    expect(verify?.headers.get("X-CSRFToken")).toBe("tok-9");
    const [hex] = signed[0] as [string];
    expect(new TextDecoder().decode(Uint8Array.from(Buffer.from(hex.slice(2), "hex")))).toBe(message);
  });
});
