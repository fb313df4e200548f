import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ALICE, BOB, BOB_ADDRESS, consent, GENERAL, RECORD } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";
import { checkGrantForm, scopeOf, type GrantForm } from "./Grant";

const TYPED_DATA = {
  domain: { name: "HealthHash ConsentRegistry", chainId: 31337, verifyingContract: "0xC0FFEE0000000000000000000000000000000004" },
  message: { grantee: BOB_ADDRESS, scope: `record:${RECORD.id}`, purpose: 0 },
};

function patientWithDirectory() {
  fakeServer
    .on("GET", "/api/me", { body: ALICE })
    .on("GET", "/api/doctors", { body: { count: 1, results: [BOB] } })
    .on("GET", "/api/hospitals", { body: { count: 1, results: [GENERAL] } })
    .on("GET", "/api/records", { body: { count: 1, next: null, previous: null, results: [RECORD] } });
}

describe("grant form rules", () => {
  const form: GrantForm = { grantee: BOB_ADDRESS, scopeKind: "chart", category: "", record: "", purpose: "TREATMENT", expiry: "" };

  it("builds the scope string the API and the chain know", () => {
    expect(scopeOf(form)).toBe("chart");
    expect(scopeOf({ ...form, scopeKind: "category", category: "laboratory" })).toBe("category:laboratory");
    expect(scopeOf({ ...form, scopeKind: "record", record: "abc" })).toBe("record:abc");
  });

  it("refuses a missing grantee, a missing choice and a past expiry", () => {
    expect(checkGrantForm({ ...form, grantee: "", scopeKind: "record", expiry: "2026-01-01" }, "2026-06-01")).toEqual({
      grantee: "Choose who gets access.",
      record: "Choose a record.",
      expiry: "The expiry must be today or later.",
    });
    expect(checkGrantForm({ ...form, expiry: "2026-06-01" }, "2026-06-01")).toEqual({});
  });
});

describe("granting access", () => {
  it("reviews in plain words, signs with the password and follows the grant until it is active", async () => {
    patientWithDirectory();
    fakeServer.on("POST", "/api/consents/typed-data", { body: TYPED_DATA });
    let polls = 0;
    const pending = consent({ status: "pending", grant_outbox_status: "pending", grant_tx_hash: "", granted_block: null, scope: `record:${RECORD.id}` });
    fakeServer.on("POST", "/api/consents", { status: 202, body: pending });
    fakeServer.on("GET", `/api/consents/${pending.id}`, () => {
      polls += 1;
      return { body: polls < 2 ? pending : { ...pending, status: "active", grant_outbox_status: "confirmed", grant_tx_hash: `0x${"cd".repeat(32)}`, granted_block: 77 } };
    });
    const { user } = openAt(`/consents/new?scope=record:${RECORD.id}`);

    await user.selectOptions(await screen.findByLabelText("Who gets access"), BOB_ADDRESS);
    expect(screen.getByLabelText("One record")).toBeChecked();
    await user.click(screen.getByRole("button", { name: "Review" }));

    expect(await screen.findByTestId("grant-sentence")).toHaveTextContent(
      "Dr Bob (General Hospital) may see one record: Observation, laboratory results, 2 Nov 2026",
    );
    expect(fakeServer.sent.find((r) => r.path === "/api/consents/typed-data")?.body).toEqual({
      action: "grant",
      grantee: BOB_ADDRESS,
      scope: `record:${RECORD.id}`,
      purpose: "TREATMENT",
      expires_at: null,
    });
    await user.type(screen.getByLabelText("Your password, to sign"), "pw");
    await user.click(screen.getByRole("button", { name: "Sign and grant" }));

    await screen.findByRole("heading", { name: "Granting access…" });
    expect(screen.getByText("Pending: queued for the chain")).toBeInTheDocument();
    await screen.findByRole("heading", { name: "Access granted" }, { timeout: 4000 });
    const status = screen.getByRole("status");
    expect(within(status).getByText("Active")).toBeInTheDocument();
    expect(status).toHaveTextContent("Granted in block 77");
    expect(fakeServer.sent.find((r) => r.method === "POST" && r.path === "/api/consents")?.body).toMatchObject({ password: "pw" });
  });

  it("shows the API's error next to the field it names", async () => {
    patientWithDirectory();
    fakeServer.on("POST", "/api/consents/typed-data", {
      status: 400,
      body: apiError("grantee_not_registered", "This doctor is not active in the Directory.", "grantee"),
    });
    const { user } = openAt("/consents/new");
    await user.selectOptions(await screen.findByLabelText("Who gets access"), BOB_ADDRESS);
    await user.click(screen.getByRole("button", { name: "Review" }));
    const who = screen.getByLabelText("Who gets access");
    await screen.findByText("This doctor is not active in the Directory.");
    expect(who).toHaveAttribute("aria-invalid", "true");
    expect(who).toHaveAccessibleDescription("This doctor is not active in the Directory.");
  });

  it("keeps the review open and marks the password when it is wrong", async () => {
    patientWithDirectory();
    fakeServer.on("POST", "/api/consents/typed-data", { body: TYPED_DATA });
    fakeServer.on("POST", "/api/consents", { status: 403, body: apiError("bad_password", "The password is wrong.", "password") });
    const { user } = openAt("/consents/new");
    await user.selectOptions(await screen.findByLabelText("Who gets access"), BOB_ADDRESS);
    await user.click(screen.getByRole("button", { name: "Review" }));
    await user.type(await screen.findByLabelText("Your password, to sign"), "bad");
    await user.click(screen.getByRole("button", { name: "Sign and grant" }));
    await screen.findByText("The password is wrong.");
    expect(screen.getByLabelText("Your password, to sign")).toHaveAttribute("aria-invalid", "true");
  });
});
