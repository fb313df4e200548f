import { describe, expect, it } from "vitest";
import { approvalExpiry, approvalScope, askedForm, checkApproval, narrowerKinds, type AccessRequest } from "./requests";

function request(overrides: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: "r0000000-0000-4000-8000-000000000001",
    doctor: { username: "bob", name: "Dr Bob", address: "0xB0B0000000000000000000000000000000000002" },
    hospital: "general",
    patient_address: "0xA11CE00000000000000000000000000000000001",
    scope: "chart",
    purpose: "TREATMENT",
    expires_at: null,
    reason: "follow-up",
    status: "pending",
    created_at: "2026-11-02T10:00:00Z",
    decided_at: null,
    decline_note: "",
    granted_scope: "",
    granted_expires_at: null,
    consent: null,
    ...overrides,
  };
}

describe("answering an access request", () => {
  it("offers the asked scope and only narrower ones", () => {
    expect(narrowerKinds("chart")).toEqual(["chart", "category", "record"]);
    expect(narrowerKinds("category:laboratory")).toEqual(["category", "record"]);
    expect(narrowerKinds("record:abc")).toEqual(["record"]);
  });

  it("starts from exactly what was asked", () => {
    const asked = askedForm(request({ scope: "category:laboratory" }));
    expect(approvalScope(asked)).toBe("category:laboratory");
    expect(approvalScope({ ...asked, kind: "record", record: "abc" })).toBe("record:abc");
  });

  it("keeps the asked expiry to the second, and sends an earlier day as its end", () => {
    const asked = request({ expires_at: "2026-12-31T12:00:00Z" });
    const form = askedForm(asked);
    expect(approvalExpiry(form, asked)).toBeUndefined();
    expect(approvalExpiry({ ...form, expiry: "2026-12-01" }, asked)).toBe(new Date("2026-12-01T23:59:59").toISOString());
    expect(approvalExpiry({ ...form, expiry: "" }, request())).toBeUndefined();
  });

  it("refuses more time than asked, no expiry when one was asked, and a missing choice", () => {
    const asked = request({ expires_at: "2026-12-31T12:00:00Z" });
    const form = askedForm(asked);
    expect(checkApproval({ ...form, expiry: "2027-01-05" }, asked, "2026-11-01").expiry).toBe("You may give less time than they asked for, not more.");
    expect(checkApproval({ ...form, expiry: "" }, asked, "2026-11-01").expiry).toMatch(/^They asked until/);
    expect(checkApproval({ ...form, kind: "record", record: "" }, asked, "2026-11-01")).toEqual({ record: "Choose a record." });
    expect(checkApproval(form, asked, "2026-11-01")).toEqual({});
  });
});
