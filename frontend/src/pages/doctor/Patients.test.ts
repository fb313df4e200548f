import { describe, expect, it } from "vitest";
import { consent } from "../../test/fixtures";
import { patientsFrom } from "./Patients";

describe("patientsFrom", () => {
  it("lists each patient once, with what their active consents cover", () => {
    const other = "0xD00D000000000000000000000000000000000009";
    const patients = patientsFrom([
      consent({ scope: "category:laboratory", expires_at: "2027-01-01T00:00:00Z" }),
      consent({ id: "c2", scope: "record:abc", expires_at: "2027-06-01T00:00:00Z" }),
      consent({ id: "c3", patient_address: other }),
      consent({ id: "c4", patient_address: "0xGONE", status: "revoked" }),
      consent({ id: "c5", patient_address: "0xLEAVING", revocation_pending: true }),
    ]);
    expect(patients).toHaveLength(2);
    expect(patients[0]).toMatchObject({ scopes: ["laboratory results", "one record"], expiresAt: "2027-06-01T00:00:00Z", consents: 2 });
    expect(patients[1]).toMatchObject({ address: other, scopes: ["whole chart"], expiresAt: null });
  });
});
