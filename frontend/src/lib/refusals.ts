// A doctor's refusals in words: the consent rule's reasons (the API's 403 codes) said for what the doctor
// tried to do ("add laboratory results", "let a model read …"). The API decides; this only says it.
import { ApiError } from "../api/client";

export function consentRefusal(error: unknown, action: string): string | null {
  if (!(error instanceof ApiError) || error.status !== 403) return null;
  switch (error.code) {
    case "no_consent":
      return `No active treatment consent of this patient lets you ${action}.`;
    case "expired":
      return `The treatment consent that let you ${action} has expired.`;
    case "revoked":
      return `The patient revoked the treatment consent that let you ${action}.`;
    case "revocation_pending":
      return `The patient is revoking the treatment consent that let you ${action}.`;
    case "not_active_doctor":
      return "You are not listed as an active doctor in the Directory.";
    default:
      return error.message;
  }
}
