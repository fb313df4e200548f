import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Me } from "../../api/types";
import { ALICE, BOB_ADDRESS, consent } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { fakeServer } from "../../test/server";

describe("my consents", () => {
  it("shows who, what, why, until when and the status with its reason, tx and block", async () => {
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", "/api/consents", {
      body: {
        count: 2,
        results: [
          consent({ scope: "category:laboratory", expires_at: "2027-03-01T12:00:00Z" }),
          consent({ id: "c2", status: "failed", failure_reason: "BadExpiry", grant_tx_hash: "", granted_block: null }),
        ],
      },
    });
    openAt("/consents");
    const rows = await screen.findAllByRole("row");
    const active = rows[1] as HTMLElement;
    expect(active).toHaveTextContent("Dr Bob");
    expect(active).toHaveTextContent("your laboratory results");
    expect(active).toHaveTextContent("to treat you");
    expect(active).toHaveTextContent("1 Mar 2027");
    expect(active).toHaveTextContent("Granted in block 42");
    expect(within(active).getByRole("button", { name: /Revoke Dr Bob's access/ })).toBeInTheDocument();
    const failed = rows[2] as HTMLElement;
    expect(failed).toHaveTextContent("The grant failed: the expiry date had already passed.");
    expect(within(failed).queryByRole("button")).toBeNull();
  });

  it("revokes with the password and follows the revocation until it is mined", async () => {
    const active = consent();
    let revoked = false;
    let listed = 0;
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", "/api/consents", () => {
      listed += 1;
      const now = !revoked ? active : listed < 4 ? { ...active, revocation_pending: true } : { ...active, status: "revoked", revoke_tx_hash: `0x${"ef".repeat(32)}`, ended_block: 50 };
      return { body: { count: 1, results: [now] } };
    });
    fakeServer.on("POST", `/api/consents/${active.id}/revoke`, () => {
      revoked = true;
      return { status: 202, body: { ...active, revocation_pending: true } };
    });
    const { user } = openAt("/consents");
    await user.click(await screen.findByRole("button", { name: /Revoke Dr Bob's access/ }));
    const panel = screen.getByRole("form", { name: "Revoke Dr Bob's access" });
    expect(panel).toHaveTextContent("Dr Bob will no longer see your whole chart");
    await user.type(within(panel).getByLabelText("Your password, to sign"), "pw");
    await user.click(within(panel).getByRole("button", { name: "Sign and revoke" }));
    await screen.findByText("Revocation pending");
    await screen.findByText("Dr Bob's access is revoked (block 50).", undefined, { timeout: 5000 });
    expect(screen.getByText("Revoked")).toBeInTheDocument();
  });
});

const WALLET_USER: Me = { ...ALICE, key_kind: "wallet" };
const REVOKE_PAYLOAD = {
  types: { EIP712Domain: [{ name: "chainId", type: "uint256" }], Revoke: [{ name: "scope", type: "string" }] },
  domain: { name: "HealthHash Consent", version: "1", chainId: 31337, verifyingContract: "0xC0FFEE0000000000000000000000000000000004" },
  primaryType: "Revoke",
  message: { patient: ALICE.eth_address, grantee: BOB_ADDRESS, scope: "chart", purpose: 0, version: 1, deadline: 1_900_000_000 },
};

/** A fake EIP-1193 wallet on chain 31337 holding Alice's account; `sign` answers eth_signTypedData_v4. */
function walletThat(sign: () => string) {
  const signed: unknown[] = [];
  (window as { ethereum?: unknown }).ethereum = {
    request: async ({ method, params }: { method: string; params?: unknown[] }) => {
      if (method === "eth_requestAccounts") return [ALICE.eth_address];
      if (method === "eth_chainId") return "0x7a69";
      if (method === "eth_signTypedData_v4") {
        signed.push(params);
        return sign();
      }
      throw Object.assign(new Error(method), { code: 4200 });
    },
  };
  return signed;
}

describe("revoking with a wallet", () => {
  afterEach(() => {
    delete (window as { ethereum?: unknown }).ethereum;
  });

  const active = consent();
  const revokePath = `/api/consents/${active.id}/revoke`;

  async function openRevokePanel() {
    const { user } = openAt("/consents");
    await user.click(await screen.findByRole("button", { name: /Revoke Dr Bob's access/ }));
    const panel = screen.getByRole("form", { name: "Revoke Dr Bob's access" });
    expect(panel).toHaveTextContent("Dr Bob will no longer see your whole chart");
    expect(within(panel).queryByLabelText("Your password, to sign")).toBeNull();
    return { user, panel };
  }

  it("signs the server's Revoke as it came, submits it with the signature and follows it until mined", async () => {
    const signature = `0x${"34".repeat(65)}`;
    const signed = walletThat(() => signature);
    let revoked = false;
    let listed = 0;
    fakeServer.on("GET", "/api/me", { body: WALLET_USER }).on("GET", "/api/consents", () => {
      listed += 1;
      const now = !revoked ? active : listed < 4 ? { ...active, revocation_pending: true } : { ...active, status: "revoked", revoke_tx_hash: `0x${"ef".repeat(32)}`, ended_block: 50 };
      return { body: { count: 1, results: [now] } };
    });
    fakeServer.on("POST", `${revokePath}/typed-data`, { body: REVOKE_PAYLOAD }).on("POST", revokePath, () => {
      revoked = true;
      return { status: 202, body: { ...active, revocation_pending: true } };
    });
    const { user, panel } = await openRevokePanel();
    await user.click(await within(panel).findByRole("button", { name: "Sign in wallet and revoke" }));

    await screen.findByText("Revocation pending", undefined, { timeout: 5000 });
    const [address, json] = signed[0] as [string, string];
    expect(address.toLowerCase()).toBe(ALICE.eth_address?.toLowerCase());
    expect(JSON.parse(json)).toEqual(REVOKE_PAYLOAD);
    expect(fakeServer.sent.find((r) => r.method === "POST" && r.path === revokePath)?.body).toEqual({ typed_data: REVOKE_PAYLOAD, signature });
    await screen.findByText("Dr Bob's access is revoked (block 50).", undefined, { timeout: 5000 });
  });

  it("says that nothing was sent when the user cancels in the wallet, and posts no revoke", async () => {
    walletThat(() => {
      throw Object.assign(new Error("User rejected the request."), { code: 4001 });
    });
    fakeServer
      .on("GET", "/api/me", { body: WALLET_USER })
      .on("GET", "/api/consents", { body: { count: 1, results: [active] } })
      .on("POST", `${revokePath}/typed-data`, { body: REVOKE_PAYLOAD });
    const { user, panel } = await openRevokePanel();
    await user.click(await within(panel).findByRole("button", { name: "Sign in wallet and revoke" }));

    expect(await screen.findByTestId("wallet-problem", {}, { timeout: 5000 })).toHaveTextContent(
      "You cancelled the signature in your wallet. Nothing was signed, so nothing was sent and nothing is pending.",
    );
    expect(fakeServer.sent.some((r) => r.method === "POST" && r.path === revokePath)).toBe(false);
    expect(within(panel).getByRole("button", { name: "Sign in wallet and revoke" })).toBeEnabled();
  });

  it("says why when the consent cannot be revoked, before the wallet is asked", async () => {
    const signed = walletThat(() => `0x${"34".repeat(65)}`);
    fakeServer
      .on("GET", "/api/me", { body: WALLET_USER })
      .on("GET", "/api/consents", { body: { count: 1, results: [active] } })
      .on("POST", `${revokePath}/typed-data`, {
        status: 409,
        body: { error: "change_pending", detail: "a change to this consent is still waiting for the chain; try again when it is mined", field: null },
      });
    const { panel } = await openRevokePanel();
    expect(await within(panel).findByRole("alert")).toHaveTextContent("a change to this consent is still waiting for the chain");
    expect(within(panel).queryByRole("button", { name: "Sign in wallet and revoke" })).toBeNull();
    expect(signed).toEqual([]);
  });
});
