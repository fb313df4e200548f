// Request access: a doctor asks a patient (by the patient's Ethereum address) for a scope, a purpose,
// perhaps an expiry, and says why. The patient answers on their "Access requests" page, perhaps with
// less than was asked; the answers are listed here, with the consent's progress on the chain.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import { listAccessRequests } from "../../api/requests";
import type { Purpose } from "../../api/types";
import { ChainFacts, StatusBadge } from "../../components/Chain";
import { FormError, RadioGroup, SelectField, TextField, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { categoryLabel } from "../../components/RecordTable";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { CATEGORY_WORDS, consentState, purposeInWords } from "../../lib/consent";
import { formErrorsFrom } from "../../lib/errors";
import { endOfDayIso, formatDate, formatDateTime, shortHex, todayIso } from "../../lib/format";
import type { AccessRequest, ScopeKind } from "../../lib/requests";
import { Link, useLocation } from "../../router";

export type RequestForm = {
  patient: string;
  kind: ScopeKind;
  category: string;
  record: string;
  purpose: Purpose;
  expiry: string;
  reason: string;
};

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function requestScope(form: RequestForm): string {
  if (form.kind === "category") return `category:${form.category}`;
  if (form.kind === "record") return `record:${form.record.trim().toLowerCase()}`;
  return "chart";
}

/** The page's own check; the API checks again (the patient exists, the record is theirs). */
export function checkRequestForm(form: RequestForm, today: string = todayIso()): FormErrors {
  const errors: FormErrors = {};
  if (!ADDRESS.test(form.patient.trim())) errors.patient = "Enter the patient's Ethereum address: 0x and 40 hex digits.";
  if (form.kind === "category" && !form.category) errors.category = "Choose a category.";
  if (form.kind === "record" && !UUID.test(form.record.trim())) errors.record = "Enter the record's id (a UUID).";
  if (form.expiry && form.expiry < today) errors.expiry = "The expiry must be today or later.";
  if (!form.reason.trim()) errors.reason = "Say why you need access: the patient reads it.";
  return errors;
}

// The API names `scope` for any of the three scope fields, and `expires_at` for the day.
function fieldsOf(errors: FormErrors, kind: ScopeKind): FormErrors {
  const moved: FormErrors = {};
  for (const [name, message] of Object.entries(errors)) {
    if (name === "scope") moved[kind === "chart" ? "kind" : kind] = message;
    else if (name === "expires_at") moved.expiry = message;
    else moved[name] = message;
  }
  return moved;
}

function scopeAsked(scope: string): string {
  if (scope === "chart") return "the whole chart";
  if (scope.startsWith("category:")) return `their ${CATEGORY_WORDS[scope.slice(9)] ?? scope.slice(9)}`;
  if (scope.startsWith("record:")) return `one record (${scope.slice(7, 15)}…)`;
  return scope;
}

function Answer({ request }: { request: AccessRequest }) {
  if (request.status === "pending") return <span className="badge badge-pending">Waiting for the patient</span>;
  if (request.status === "declined") {
    return (
      <>
        <span className="badge badge-ended">Declined</span>
        {request.decline_note ? <span> “{request.decline_note}”</span> : null}
      </>
    );
  }
  return (
    <>
      <span>Approved: {scopeAsked(request.granted_scope || request.scope)}</span>{" "}
      {request.consent ? (
        <>
          <StatusBadge consent={request.consent} />
          <ChainFacts consent={request.consent} />
        </>
      ) : null}
    </>
  );
}

export function RequestAccess() {
  const { query } = useLocation();
  const [form, setForm] = useState<RequestForm>(() => ({
    patient: query.get("patient") ?? "",
    kind: "chart",
    category: "",
    record: "",
    purpose: "TREATMENT",
    expiry: "",
    reason: "",
  }));
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState("");
  const made = useLoad(listAccessRequests, []);
  const set = (patch: Partial<RequestForm>) => setForm((current) => ({ ...current, ...patch }));
  const requests = made.data ?? [];
  useRefreshWhile(
    requests.some((r) => r.status === "pending" || (r.consent && consentState(r.consent).inFlight)),
    made.refresh,
  );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSent("");
    const problems = checkRequestForm(form);
    setErrors(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const created = await call(
        api.POST("/api/access-requests", {
          body: {
            patient: form.patient.trim(),
            scope: requestScope(form),
            purpose: form.purpose,
            expires_at: form.expiry ? endOfDayIso(form.expiry) : null,
            reason: form.reason.trim(),
          },
        }),
      );
      setSent(`Your request was sent to patient ${shortHex(created.patient_address)}. You will see the answer below.`);
      setForm((current) => ({ ...current, reason: "" }));
      void made.refresh();
    } catch (error) {
      setErrors(fieldsOf(formErrorsFrom(error, ["patient", "scope", "purpose", "expires_at", "reason"]), form.kind));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Request access" intro="Ask a patient for access to their records. The patient reads your reason and may give you less than you ask.">
      <form className="form" onSubmit={submit} noValidate aria-label="Request access">
        <FormError errors={errors} />
        <TextField
          id="patient"
          label="Patient's Ethereum address"
          autoComplete="off"
          spellCheck={false}
          value={form.patient}
          onChange={(e) => set({ patient: e.target.value })}
          error={errors.patient}
          hint="The patient finds it on their Profile page."
        />
        <RadioGroup
          id="kind"
          label="What you ask to see"
          value={form.kind}
          onChange={(value) => set({ kind: value as ScopeKind })}
          error={errors.kind}
          choices={[
            { value: "chart", label: "The whole chart" },
            { value: "category", label: "One category of records" },
            { value: "record", label: "One record" },
          ]}
        />
        {form.kind === "category" ? (
          <SelectField id="category" label="Category" value={form.category} onChange={(e) => set({ category: e.target.value })} error={errors.category}>
            <option value="">Choose a category</option>
            {Object.keys(CATEGORY_WORDS).map((name) => (
              <option key={name} value={name}>
                {categoryLabel(name)}
              </option>
            ))}
          </SelectField>
        ) : null}
        {form.kind === "record" ? (
          <TextField id="record" label="Record id" autoComplete="off" spellCheck={false} value={form.record} onChange={(e) => set({ record: e.target.value })} error={errors.record} />
        ) : null}
        <RadioGroup
          id="purpose"
          label="Why"
          value={form.purpose}
          onChange={(value) => set({ purpose: value as Purpose })}
          error={errors.purpose}
          choices={[
            { value: "TREATMENT", label: "Treatment", hint: "to look after the patient" },
            { value: "TRAINING", label: "Training", hint: "to improve the hospitals' shared model" },
          ]}
        />
        <TextField
          id="expiry"
          label="Until (optional)"
          type="date"
          min={todayIso()}
          value={form.expiry}
          onChange={(e) => set({ expiry: e.target.value })}
          error={errors.expiry}
          hint="Leave empty to ask until the patient revokes it."
        />
        <TextField id="reason" label="Reason, for the patient" value={form.reason} onChange={(e) => set({ reason: e.target.value })} error={errors.reason} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Sending…" : "Send the request"}
          </button>
          <Link to="/patients">Cancel</Link>
        </div>
      </form>
      <p className="live notice" role="status" aria-live="polite">
        {sent}
      </p>

      <h2>Requests I made</h2>
      <ConnectionWatch error={made.data ? made.error : null} />
      {made.error && !made.data ? <ErrorNotice error={made.error} onRetry={made.reload} /> : null}
      {!made.data && made.loading ? <Loading what="your requests" /> : null}
      {made.data && !requests.length ? <Empty>You have not asked anyone yet.</Empty> : null}
      {requests.length ? (
        <table className="cards">
          <caption className="visually-hidden">Requests I made</caption>
          <thead>
            <tr>
              <th scope="col">Patient</th>
              <th scope="col">Asked for</th>
              <th scope="col">Until</th>
              <th scope="col">Answer</th>
              <th scope="col">Asked on</th>
            </tr>
          </thead>
          <tbody>
            {requests.map((request) => (
              <tr key={request.id} data-request={request.id}>
                <td data-label="Patient">
                  <code className="address" title={request.patient_address}>
                    {shortHex(request.patient_address)}
                  </code>
                </td>
                <td data-label="Asked for">
                  {scopeAsked(request.scope)} {purposeInWords(request.purpose).replace("you", "them")}
                </td>
                <td data-label="Until">{request.expires_at ? formatDate(request.expires_at) : "until revoked"}</td>
                <td data-label="Answer">
                  <Answer request={request} />
                </td>
                <td data-label="Asked on">{formatDateTime(request.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Page>
  );
}
