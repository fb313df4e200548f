import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Me } from "../../api/types";
import { ALICE, BOB, BOB_ADDRESS, consent, GENERAL } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { fakeServer } from "../../test/server";

const WALLET_USER: Me = { ...ALICE, key_kind: "wallet" };
const PAYLOAD = {
  types: { EIP712Domain: [{ name: "chainId", type: "uint256" }], Grant: [{ name: "scope", type: "string" }] },
  domain: { name: "HealthHash Consent", version: "1", chainId: 31337, verifyingContract: "0xC0FFEE0000000000000000000000000000000004" },
  primaryType: "Grant",
  message: { grantee: BOB_ADDRESS, scope: "chart", purpose: 0, expiresAt: 0, deadline: 1_900_000_000 },
};

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

async function reviewChartGrant() {
  fakeServer
    .on("GET", "/api/me", { body: WALLET_USER })
    .on("GET", "/api/doctors", { body: { count: 1, results: [BOB] } })
    .on("GET", "/api/hospitals", { body: { count: 1, results: [GENERAL] } })
    .on("GET", "/api/records", { body: { count: 0, next: null, previous: null, results: [] } })
    .on("POST", "/api/consents/typed-data", { body: PAYLOAD });
  const { user } = openAt("/consents/new");
  await user.selectOptions(await screen.findByLabelText("Who gets access"), BOB_ADDRESS);
  await user.click(screen.getByRole("button", { name: "Review" }));
  await screen.findByRole("heading", { name: "What your wallet will sign" });
  expect(screen.queryByLabelText("Your password, to sign")).toBeNull();
  return user;
}

describe("granting with a wallet", () => {
  afterEach(() => {
    delete (window as { ethereum?: unknown }).ethereum;
  });

  it("signs the server's payload as it came and submits it with the signature", async () => {
    const signature = `0x${"12".repeat(65)}`;
    const signed = walletThat(() => signature);
    const pending = consent({ status: "pending", grant_outbox_status: "pending", grant_tx_hash: "", granted_block: null });
    fakeServer.on("POST", "/api/consents", { status: 202, body: pending }).on("GET", `/api/consents/${pending.id}`, { body: pending });
    const user = await reviewChartGrant();
    await user.click(screen.getByRole("button", { name: "Sign in my wallet and grant" }));

    await screen.findByRole("heading", { name: "Granting access…" }, { timeout: 5000 });
    const [, json] = signed[0] as [string, string];
    expect(JSON.parse(json)).toEqual(PAYLOAD);
    expect(fakeServer.sent.find((r) => r.method === "POST" && r.path === "/api/consents")?.body).toEqual({ typed_data: PAYLOAD, signature });
  });

  it("says that nothing is pending when the user cancels in the wallet, and sends nothing", async () => {
    walletThat(() => {
      throw Object.assign(new Error("User rejected the request."), { code: 4001 });
    });
    const user = await reviewChartGrant();
    await user.click(screen.getByRole("button", { name: "Sign in my wallet and grant" }));
    expect(await screen.findByTestId("wallet-problem", {}, { timeout: 5000 })).toHaveTextContent(
      "You cancelled the signature in your wallet. Nothing was signed, so nothing was sent and nothing is pending.",
    );
    expect(fakeServer.sent.some((r) => r.method === "POST" && r.path === "/api/consents")).toBe(false);
    expect(screen.getByRole("button", { name: "Sign in my wallet and grant" })).toBeEnabled();
  });
});
