import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ALICE, consent } from "../../test/fixtures";
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
