// How a consent reads to a person: its status in words (with the chain's reason when it failed) and
// the sentence that says what a grant or a revocation will allow. No rule lives here: the API decides.
import type { Consent } from "../api/types";
import { formatDate } from "./format";

export type Tone = "pending" | "ok" | "ended" | "bad";

export type ConsentState = {
  label: string;
  tone: Tone;
  /** Something is on its way to the chain: keep following it. */
  inFlight: boolean;
  /** Words for what went wrong, when something did. */
  problem: string | null;
};

// The ConsentRegistry's custom errors (what a failed grant or revoke carries), in words.
const CHAIN_REASONS: Record<string, string> = {
  DeadlineExpired: "the signature's deadline passed before it reached the chain",
  BadVersion: "another change to the same consent reached the chain first",
  BadSignature: "the signature did not match your key",
  GranteeNotRegistered: "the doctor or hospital is not registered as active in the Directory",
  NotActive: "there was no active consent to revoke",
  BadExpiry: "the expiry date had already passed",
  BadPurpose: "the purpose is not one the chain knows",
};

export function reasonInWords(code: string): string {
  return CHAIN_REASONS[code] ?? `the chain refused it (${code})`;
}

export function consentState(consent: Consent): ConsentState {
  switch (consent.status) {
    case "pending":
      return {
        label: consent.grant_outbox_status === "sent" ? "Pending: sent, waiting to be mined" : "Pending: queued for the chain",
        tone: "pending",
        inFlight: true,
        problem: null,
      };
    case "active":
      if (consent.revocation_pending) {
        return { label: "Revocation pending", tone: "pending", inFlight: true, problem: null };
      }
      if (consent.revoke_failure_reason) {
        return {
          label: "Active: revocation failed",
          tone: "bad",
          inFlight: false,
          problem: `The revocation failed: ${reasonInWords(consent.revoke_failure_reason)}.`,
        };
      }
      return { label: "Active", tone: "ok", inFlight: false, problem: null };
    case "expired":
      return { label: "Expired", tone: "ended", inFlight: false, problem: null };
    case "revoked":
      return { label: "Revoked", tone: "ended", inFlight: false, problem: null };
    case "superseded":
      return { label: "Replaced by a newer grant", tone: "ended", inFlight: false, problem: null };
    case "failed":
      return {
        label: "Failed",
        tone: "bad",
        inFlight: false,
        problem: `The grant failed: ${reasonInWords(consent.failure_reason ?? "")}.`,
      };
    default:
      return { label: consent.status, tone: "ended", inFlight: false, problem: null };
  }
}

export function canRevoke(consent: Consent): boolean {
  return consent.status === "active" && !consent.revocation_pending;
}

export function granteeName(consent: Consent): string {
  const { grantee } = consent;
  return grantee.name ?? consent.grantee_address;
}

export const CATEGORY_WORDS: Record<string, string> = {
  laboratory: "laboratory results",
  "vital-signs": "vital signs",
  condition: "conditions",
  medication: "medications",
  imaging: "imaging",
  "clinical-note": "clinical notes",
  document: "documents",
};

/** "your whole chart", "your laboratory results", "one record (…)". */
export function scopeInWords(scope: string, recordLabel?: string): string {
  if (scope === "chart") return "your whole chart";
  if (scope.startsWith("category:")) {
    const category = scope.slice("category:".length);
    return `your ${CATEGORY_WORDS[category] ?? category}`;
  }
  if (scope.startsWith("record:")) {
    return `one record: ${recordLabel ?? `no. ${scope.slice("record:".length, "record:".length + 8)}`}`;
  }
  return scope;
}

export function purposeInWords(purpose: string): string {
  if (purpose === "TREATMENT") return "to treat you";
  if (purpose === "TRAINING") return "to train the hospitals' shared model";
  return `for ${purpose}`;
}

export type GrantTerms = {
  granteeName: string;
  scope: string;
  purpose: string;
  expiresAt: string | null;
  recordLabel?: string;
};

/** The grant in one sentence, as the review step shows it before anything is signed. */
export function grantSentence(terms: GrantTerms): string {
  const until = terms.expiresAt
    ? `until ${formatDate(terms.expiresAt)}, unless you revoke it sooner`
    : "until you revoke it";
  return `${terms.granteeName} may see ${scopeInWords(terms.scope, terms.recordLabel)} ${purposeInWords(terms.purpose)}, ${until}.`;
}

export function revokeSentence(consent: Consent, recordLabel?: string): string {
  return `${granteeName(consent)} will no longer see ${scopeInWords(consent.scope, recordLabel)} ${purposeInWords(consent.purpose)}: the refusal starts with the block your revocation is mined in.`;
}
