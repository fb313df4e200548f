// Access requests as a patient answers them: which scopes an approval may choose (the one asked for,
// or a narrower one) and the form's own check. The API decides again: a wider scope or a later expiry
// is refused there too (wider_than_requested).
import type { components } from "../api/schema";
import type { FormErrors } from "../components/Fields";
import { endOfDayIso, todayIso } from "./format";

export type AccessRequest = components["schemas"]["AccessRequestOut"];

export type ScopeKind = "chart" | "category" | "record";

export type ApprovalForm = {
  kind: ScopeKind;
  category: string;
  record: string;
  expiry: string; // yyyy-mm-dd, or "" for none
};

/** The scope kinds an approval of `asked` may choose, widest first. */
export function narrowerKinds(asked: string): ScopeKind[] {
  if (asked === "chart") return ["chart", "category", "record"];
  if (asked.startsWith("category:")) return ["category", "record"];
  return ["record"];
}

/** The form as it starts: exactly what was asked. */
export function askedForm(request: AccessRequest): ApprovalForm {
  const asked = request.scope;
  return {
    kind: asked === "chart" ? "chart" : asked.startsWith("category:") ? "category" : "record",
    category: asked.startsWith("category:") ? asked.slice("category:".length) : "",
    record: asked.startsWith("record:") ? asked.slice("record:".length) : "",
    expiry: request.expires_at ? dayOf(request.expires_at) : "",
  };
}

export function dayOf(iso: string): string {
  return todayIso(new Date(iso));
}

export function approvalScope(form: ApprovalForm): string {
  if (form.kind === "category") return `category:${form.category}`;
  if (form.kind === "record") return `record:${form.record}`;
  return "chart";
}

/** The expiry to send: none when it stays as asked (the request's exact time), else the chosen day's end. */
export function approvalExpiry(form: ApprovalForm, request: AccessRequest): string | undefined {
  if (!form.expiry) return undefined;
  if (request.expires_at && form.expiry === dayOf(request.expires_at)) return undefined;
  return endOfDayIso(form.expiry);
}

export function checkApproval(form: ApprovalForm, request: AccessRequest, today: string = todayIso()): FormErrors {
  const errors: FormErrors = {};
  if (form.kind === "category" && !form.category) errors.category = "Choose a category.";
  if (form.kind === "record" && !form.record) errors.record = "Choose a record.";
  if (form.expiry && form.expiry < today) errors.expiry = "The expiry must be today or later.";
  if (request.expires_at && !form.expiry) errors.expiry = `They asked until ${dayOf(request.expires_at)}: choose that day or an earlier one.`;
  if (request.expires_at && form.expiry && form.expiry > dayOf(request.expires_at)) {
    errors.expiry = "You may give less time than they asked for, not more.";
  }
  return errors;
}
