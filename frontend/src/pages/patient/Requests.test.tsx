import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Me } from "../../api/types";
import type { AccessRequest } from "../../lib/requests";
import { ALICE, BOB_ADDRESS, consent, RECORD } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";

const ASKED: AccessRequest = {
  id: "a0000000-0000-4000-8000-000000000001",
  doctor: { username: "bob", name: "Dr Bob", address: BOB_ADDRESS },
  hospital: "general",
  patient_address: ALICE.eth_address ?? "",
  scope: "chart",
  purpose: "TREATMENT",
  expires_at: null,
  reason: "Follow-up of your anaemia",
  status: "pending",
  created_at: "2026-11-02T10:00:00Z",
  decided_at: null,
  decline_note: "",
  granted_scope: "",
  granted_expires_at: null,
  consent: null,
};
const NARROW = `record:${RECORD.id}`;
const PAYLOAD = {
  types: { Grant: [{ name: "scope", type: "string" }] },
  domain: { name: "HealthHash Consent", chainId: 31337 },
  primaryType: "Grant",
  message: { grantee: BOB_ADDRESS, scope: NARROW, purpose: 0, expiresAt: 0 },
};

function patient(me: Me = ALICE) {
  let answered = false;
  const approved = { ...ASKED, status: "approved" as const, granted_scope: NARROW, consent: consent({ scope: NARROW }) };
  fakeServer
    .on("GET", "/api/me", { body: me })
    .on("GET", "/api/records", { body: { count: 1, next: null, previous: null, results: [RECORD] } })
    .on("GET", "/api/access-requests", () => ({ body: { count: 1, results: [answered ? approved : ASKED] } }))
    .on("POST", `/api/access-requests/${ASKED.id}/typed-data`, { body: PAYLOAD })
    .on("POST", `/api/access-requests/${ASKED.id}/approve`, () => {
      answered = true;
      return { status: 202, body: approved };
    });
}

async function narrowToTheRecord(user: ReturnType<typeof openAt>["user"]) {
  await user.click(await screen.findByRole("button", { name: "Approve Dr Bob's request…" }));
  const form = screen.getByRole("form", { name: "Approve Dr Bob's request" });
  expect(within(form).getByLabelText("My whole chart")).toBeChecked();
  await user.click(within(form).getByLabelText("One record"));
  await user.selectOptions(within(form).getByLabelText("Record"), RECORD.id);
  await user.click(within(form).getByRole("button", { name: "Review" }));
  return screen.findByRole("form", { name: "Sign the approval for Dr Bob" });
}

describe("access requests, as the patient", () => {
  afterEach(() => {
    delete (window as { ethereum?: unknown }).ethereum;
  });

  it("approves one record instead of the chart, reading first what will be signed", async () => {
    patient();
    const { user } = openAt("/requests");
    const card = await screen.findByRole("article", { name: /^Dr Bob \(general\) asks to see your whole chart to treat you/ });
    expect(card).toHaveTextContent("Follow-up of your anaemia");

    const signing = await narrowToTheRecord(user);
    expect(within(signing).getByTestId("approval-sentence")).toHaveTextContent("Dr Bob may see one record: Observation, laboratory results");
    expect(fakeServer.sent.find((r) => r.path.endsWith("/typed-data"))?.body).toEqual({ scope: NARROW });
    await user.type(within(signing).getByLabelText("Your password, to sign"), "pw");
    await user.click(within(signing).getByRole("button", { name: "Sign and approve" }));

    expect(await screen.findByText("You approved Dr Bob's request. The grant is on its way to the chain.")).toBeInTheDocument();
    expect(fakeServer.sent.find((r) => r.path.endsWith("/approve"))?.body).toEqual({ scope: NARROW, password: "pw" });
    const answered = await screen.findByRole("table", { name: "Requests you answered" });
    expect(answered).toHaveTextContent("Approved: one record: Observation, laboratory results");
  });

  it("shows the API's refusal of a term next to its field", async () => {
    patient();
    fakeServer.on("POST", `/api/access-requests/${ASKED.id}/typed-data`, {
      status: 400,
      body: apiError("wider_than_requested", "record:x is not within the requested scope chart", "scope"),
    });
    const { user } = openAt("/requests");
    await user.click(await screen.findByRole("button", { name: "Approve Dr Bob's request…" }));
    const form = screen.getByRole("form", { name: "Approve Dr Bob's request" });
    await user.click(within(form).getByLabelText("One record"));
    await user.selectOptions(within(form).getByLabelText("Record"), RECORD.id);
    await user.click(within(form).getByRole("button", { name: "Review" }));
    expect(await within(form).findByText("record:x is not within the requested scope chart")).toBeInTheDocument();
    expect(within(form).getByLabelText("Record")).toHaveAttribute("aria-invalid", "true");
  });

  it("lets a wallet user sign the prepared Grant in the wallet, and says so when they cancel", async () => {
    const wallet: Me = { ...ALICE, key_kind: "wallet" };
    patient(wallet);
    let cancel = true;
    const signature = `0x${"ef".repeat(65)}`;
    (window as { ethereum?: unknown }).ethereum = {
      request: async ({ method }: { method: string }) => {
        if (method === "eth_requestAccounts") return [ALICE.eth_address];
        if (method === "eth_chainId") return "0x7a69";
        if (method === "eth_signTypedData_v4" && cancel) throw Object.assign(new Error("User rejected"), { code: 4001 });
        if (method === "eth_signTypedData_v4") return signature;
        throw Object.assign(new Error(method), { code: 4200 });
      },
    };
    const { user } = openAt("/requests");
    const signing = await narrowToTheRecord(user);
    expect(within(signing).queryByLabelText("Your password, to sign")).toBeNull();
    await user.click(within(signing).getByRole("button", { name: "Sign in my wallet and approve" }));
    expect(await within(signing).findByRole("alert", {}, { timeout: 5000 })).toHaveTextContent("You cancelled the signature in your wallet. Nothing was signed");
    expect(fakeServer.sent.some((r) => r.path.endsWith("/approve"))).toBe(false);

    cancel = false;
    await user.click(within(signing).getByRole("button", { name: "Sign in my wallet and approve" }));
    expect(await screen.findByText("You approved Dr Bob's request. The grant is on its way to the chain.", {}, { timeout: 5000 })).toBeInTheDocument();
    expect(fakeServer.sent.find((r) => r.path.endsWith("/approve"))?.body).toEqual({ scope: NARROW, typed_data: PAYLOAD, signature });
  });

  it("declines with a note", async () => {
    patient();
    fakeServer.on("POST", `/api/access-requests/${ASKED.id}/decline`, { body: { ...ASKED, status: "declined" } });
    const { user } = openAt("/requests");
    await user.click(await screen.findByRole("button", { name: "Decline Dr Bob's request…" }));
    const form = screen.getByRole("form", { name: "Decline Dr Bob's request" });
    await user.type(within(form).getByLabelText("A note to the doctor (optional)"), "Not now");
    await user.click(within(form).getByRole("button", { name: "Decline" }));
    expect(await screen.findByText("You declined Dr Bob's request.")).toBeInTheDocument();
    expect(fakeServer.sent.find((r) => r.path.endsWith("/decline"))?.body).toEqual({ note: "Not now" });
  });
});
