// Shapes the fake server answers with, typed by the schema so a changed API breaks these too.
import type { Consent, Doctor, Hospital, Me, RecordMeta } from "../api/types";

export const ALICE: Me = {
  id: 1,
  username: "alice",
  role: "patient",
  eth_address: "0xA11CE00000000000000000000000000000000001",
  key_kind: "managed",
  hospital: null,
};

export const BOB_ADDRESS = "0xB0B0000000000000000000000000000000000002";

export const BOB: Doctor = {
  id: 7,
  user_id: 2,
  name: "Dr Bob",
  eth_address: BOB_ADDRESS,
  hospital: { slug: "general", name: "General Hospital", hospital_id: "0x01" },
  active: true,
};

export const GENERAL: Hospital = {
  slug: "general",
  name: "General Hospital",
  hospital_id: "0x01",
  account_address: "0x6E4E000000000000000000000000000000000003",
  active: true,
};

export const RECORD: RecordMeta = {
  id: "7d1c8f0e-0000-4000-8000-000000000001",
  patient_address: ALICE.eth_address ?? "",
  category: "laboratory",
  resource_type: "Observation",
  content_type: "application/fhir+json",
  created_by: "alice",
  created_at: "2026-11-02T10:00:00Z",
  cid: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
  sealed_size: 400,
  digest: "ab".repeat(32),
  key_id: "kek-1",
  anchored: false,
  anchored_block: null,
  content_url: "/api/records/7d1c8f0e-0000-4000-8000-000000000001/content",
};

export function consent(overrides: Partial<Consent> = {}): Consent {
  return {
    id: "c0000000-0000-4000-8000-000000000001",
    consent_key: `0x${"11".repeat(32)}`,
    patient_address: ALICE.eth_address ?? "",
    grantee_address: BOB_ADDRESS,
    grantee: { kind: "doctor", name: "Dr Bob", hospital: "general" },
    scope: "chart",
    purpose: "TREATMENT",
    expires_at: null,
    version: 1,
    status: "active",
    failure_reason: "",
    grant_tx_hash: `0x${"ab".repeat(32)}`,
    granted_block: 42,
    granted_at: "2026-11-02T10:00:00Z",
    grant_outbox_status: "confirmed",
    revocation_pending: false,
    revoke_failure_reason: "",
    revoke_tx_hash: "",
    ended_block: null,
    ended_at: null,
    created_at: "2026-11-02T10:00:00Z",
    ...overrides,
  };
}
