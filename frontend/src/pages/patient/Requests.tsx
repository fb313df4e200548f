// Access requests made to me: a doctor asks for a scope, a purpose and perhaps an expiry, with a reason.
// I approve exactly that or something narrower (one category or one record instead of the chart, an
// earlier expiry), after reading in plain words what will be signed; password users confirm with their
// password, wallet users sign in their wallet. Or I decline, with a note if I like. An approval is a
// grant like any other: it is followed here until the chain has it.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import { listRecords } from "../../api/lists";
import { listAccessRequests } from "../../api/requests";
import type { RecordMeta } from "../../api/types";
import { ChainFacts, StatusBadge } from "../../components/Chain";
import { FORM, FormError, RadioGroup, SelectField, TextField, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { PasswordConfirmForm } from "../../components/PasswordConfirmForm";
import { categoryLabel, recordLabel } from "../../components/RecordTable";
import { WalletSign } from "../../components/WalletSign";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { consentState, grantSentence, purposeInWords, scopeInWords } from "../../lib/consent";
import { formErrorsFrom } from "../../lib/errors";
import { formatDate, formatDateTime, todayIso } from "../../lib/format";
import {
  approvalExpiry,
  approvalScope,
  askedForm,
  checkApproval,
  dayOf,
  narrowerKinds,
  type AccessRequest,
  type ApprovalForm,
  type ScopeKind,
} from "../../lib/requests";
import type { TypedPayload } from "../../lib/wallet";
import { useMe } from "../../session";
import "../../components/cards.css";

type Labels = ReadonlyMap<string, string>;

function doctorName(request: AccessRequest): string {
  return request.doctor.name || request.doctor.username || request.doctor.address || "A doctor";
}

function scopeWords(scope: string, labels: Labels): string {
  return scopeInWords(scope, scope.startsWith("record:") ? labels.get(scope.slice("record:".length)) : undefined);
}

const KIND_LABELS: Record<ScopeKind, string> = {
  chart: "My whole chart",
  category: "One category of records",
  record: "One record",
};

// Where an API error about a term belongs on the form (signed terms come back under typed_data.message).
function fieldsOf(errors: FormErrors, kind: ScopeKind): FormErrors {
  const moved: FormErrors = {};
  for (const [name, message] of Object.entries(errors)) {
    if (name === "scope") moved[kind === "chart" ? "kind" : kind] = message;
    else if (name === "expires_at") moved.expiry = message;
    else moved[name] = message;
  }
  return moved;
}

const API_FIELDS = ["scope", "expires_at", "password"] as const;

function ApprovePanel({
  request,
  records,
  labels,
  onDone,
  onCancel,
}: {
  request: AccessRequest;
  records: RecordMeta[];
  labels: Labels;
  onDone: () => void;
  onCancel: () => void;
}) {
  const me = useMe();
  const who = doctorName(request);
  const [form, setForm] = useState<ApprovalForm>(() => askedForm(request));
  const [errors, setErrors] = useState<FormErrors>({});
  const [prepared, setPrepared] = useState<TypedPayload | null>(null);
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<ApprovalForm>) => setForm((current) => ({ ...current, ...patch }));
  const id = (name: string) => `approve-${request.id}-${name}`;
  const kinds = narrowerKinds(request.scope);
  const askedCategory = request.scope.startsWith("category:") ? request.scope.slice("category:".length) : "";
  const choosable = askedCategory ? records.filter((r) => r.category === askedCategory) : records;
  const scope = approvalScope(form);
  const terms = { scope, expires_at: approvalExpiry(form, request) };

  const review = async (event: FormEvent) => {
    event.preventDefault();
    const problems = checkApproval(form, request);
    setErrors(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      // The server checks the narrowing as it would the approval, and answers with the Grant to sign.
      const payload = await call(
        api.POST("/api/access-requests/{request_id}/typed-data", { params: { path: { request_id: request.id } }, body: terms }),
      );
      setPrepared(payload as unknown as TypedPayload);
    } catch (error) {
      setErrors(fieldsOf(formErrorsFrom(error, API_FIELDS), form.kind));
    } finally {
      setBusy(false);
    }
  };

  // A refused term goes back to the choices, where its error is said; a refused password or signature
  // (a refused signed payload, field typed_data.…, is said for the whole form) stays here.
  const refused = (error: unknown): FormErrors => {
    const found = fieldsOf(formErrorsFrom(error, API_FIELDS), form.kind);
    if (!found.password && !found[FORM]) setPrepared(null);
    setErrors(found);
    return found;
  };

  const approve = async (body: { password: string } | { typed_data: Record<string, unknown>; signature: string }) => {
    const path = { request_id: request.id };
    await call(api.POST("/api/access-requests/{request_id}/approve", { params: { path }, body: { ...terms, ...body } }));
    onDone();
  };

  const approveSigned = async (typed_data: Record<string, unknown>, signature: string) => {
    setBusy(true);
    try {
      await approve({ typed_data, signature });
    } catch (error) {
      refused(error);
      setBusy(false);
    }
  };

  if (prepared) {
    const message = prepared.message;
    const expiresAt = Number(message.expiresAt ?? 0) > 0 ? new Date(Number(message.expiresAt) * 1000).toISOString() : null;
    const sentence = grantSentence({
      granteeName: who,
      scope: String(message.scope ?? scope),
      purpose: request.purpose,
      expiresAt,
      recordLabel: labels.get(String(message.scope ?? scope).slice("record:".length)),
    });
    const facts = (
      <>
        <h3>Check and sign</h3>
        <p className="plain-words" data-testid="approval-sentence">
          {sentence}
        </p>
        <h4>What your {me.key_kind === "wallet" ? "wallet" : "key"} will sign</h4>
        <dl className="facts">
          <dt>Grant to</dt>
          <dd>
            <code className="address">{String(message.grantee ?? "")}</code>
          </dd>
          <dt>Scope</dt>
          <dd>
            <code>{String(message.scope ?? scope)}</code>
          </dd>
          <dt>Purpose</dt>
          <dd>{request.purpose}</dd>
          <dt>Expires</dt>
          <dd>{expiresAt ? formatDateTime(expiresAt) : "never (until revoked)"}</dd>
        </dl>
      </>
    );
    if (me.key_kind !== "wallet") {
      return (
        <PasswordConfirmForm
          id={id("password")}
          aria-label={`Sign the approval for ${who}`}
          action="Sign and approve"
          missing="Enter your password to sign the approval."
          hint="It unlocks your key for this one signature; HealthHash relays the signed grant to the chain for you."
          confirm={(password) => approve({ password })}
          refused={refused}
          onCancel={() => setPrepared(null)}
          cancelLabel="Change"
          password={password}
          onPasswordChange={setPassword}
        >
          {facts}
        </PasswordConfirmForm>
      );
    }
    return (
      <form className="panel" onSubmit={(event) => event.preventDefault()} noValidate aria-label={`Sign the approval for ${who}`}>
        {facts}
        <FormError errors={errors} />
        <WalletSign
          payload={prepared}
          address={me.eth_address ?? ""}
          label="Sign in my wallet and approve"
          disabled={busy}
          onSigned={(signature) => approveSigned(prepared as unknown as Record<string, unknown>, signature)}
        />
        <div className="actions">
          <button type="button" onClick={() => setPrepared(null)} disabled={busy}>
            Change
          </button>
        </div>
      </form>
    );
  }

  return (
    <form className="panel" onSubmit={review} noValidate aria-label={`Approve ${who}'s request`}>
      <h3>Approve {who}'s request</h3>
      <p className="hint">You may give exactly what was asked, or less: one category or one record instead, or an earlier end.</p>
      <FormError errors={errors} />
      {kinds.length > 1 ? (
        <RadioGroup
          id={id("kind")}
          label="What they may see"
          value={form.kind}
          onChange={(value) => set({ kind: value as ScopeKind, category: askedCategory || form.category })}
          error={errors.kind}
          choices={kinds.map((kind) => ({
            value: kind,
            label: KIND_LABELS[kind],
            hint: kind === "category" && askedCategory ? `(${categoryLabel(askedCategory).toLowerCase()}, as asked)` : undefined,
          }))}
        />
      ) : (
        <p>They may see {scopeWords(request.scope, labels)}, as asked.</p>
      )}
      {form.kind === "category" && !askedCategory ? (
        <SelectField id={id("category")} label="Category" value={form.category} onChange={(e) => set({ category: e.target.value })} error={errors.category}>
          <option value="">Choose a category</option>
          {Array.from(new Set(records.map((r) => r.category))).map((name) => (
            <option key={name} value={name}>
              {categoryLabel(name)}
            </option>
          ))}
        </SelectField>
      ) : null}
      {form.kind === "record" && kinds.length > 1 ? (
        <SelectField id={id("record")} label="Record" value={form.record} onChange={(e) => set({ record: e.target.value })} error={errors.record}>
          <option value="">Choose a record</option>
          {choosable.map((record) => (
            <option key={record.id} value={record.id}>
              {recordLabel(record)}
            </option>
          ))}
        </SelectField>
      ) : null}
      <TextField
        id={id("expiry")}
        label={request.expires_at ? "Expires on" : "Expires on (optional)"}
        type="date"
        min={todayIso()}
        max={request.expires_at ? dayOf(request.expires_at) : undefined}
        value={form.expiry}
        onChange={(e) => set({ expiry: e.target.value })}
        error={errors.expiry}
        hint={
          request.expires_at
            ? `They asked until ${formatDate(request.expires_at)}; you may choose an earlier day.`
            : "Leave empty to keep it until you revoke it."
        }
      />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Checking…" : "Review"}
        </button>
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function DeclinePanel({ request, onDone, onCancel }: { request: AccessRequest; onDone: () => void; onCancel: () => void }) {
  const who = doctorName(request);
  const [note, setNote] = useState("");
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await call(api.POST("/api/access-requests/{request_id}/decline", { params: { path: { request_id: request.id } }, body: { note } }));
      onDone();
    } catch (error) {
      setErrors(formErrorsFrom(error, ["note"]));
      setBusy(false);
    }
  };
  return (
    <form className="panel" onSubmit={submit} noValidate aria-label={`Decline ${who}'s request`}>
      <h3>Decline {who}'s request?</h3>
      <p>Nothing is signed and nothing changes on the chain; {who} sees that you declined.</p>
      <FormError errors={errors} />
      <TextField id={`decline-${request.id}-note`} label="A note to the doctor (optional)" value={note} onChange={(e) => setNote(e.target.value)} error={errors.note} />
      <div className="actions">
        <button type="submit" className="danger" disabled={busy}>
          {busy ? "Declining…" : "Decline"}
        </button>
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function PendingRequest({
  request,
  records,
  labels,
  onAnswered,
}: {
  request: AccessRequest;
  records: RecordMeta[];
  labels: Labels;
  onAnswered: (words: string) => void;
}) {
  const [answering, setAnswering] = useState<"approve" | "decline" | null>(null);
  const who = doctorName(request);
  const titleId = `request-${request.id}-title`;
  return (
    <li>
      <article className="card" aria-labelledby={titleId} data-request={request.id}>
        <h3 id={titleId}>
          {who} ({request.hospital}) asks to see {scopeWords(request.scope, labels)} {purposeInWords(request.purpose)}
        </h3>
        <dl className="facts">
          <dt>Why</dt>
          <dd>{request.reason}</dd>
          <dt>Until</dt>
          <dd>{request.expires_at ? formatDate(request.expires_at) : "until you revoke it"}</dd>
          <dt>Asked on</dt>
          <dd>{formatDateTime(request.created_at)}</dd>
          <dt>Doctor's address</dt>
          <dd>
            <code className="address">{request.doctor.address}</code>
          </dd>
        </dl>
        {answering === "approve" ? (
          <ApprovePanel
            request={request}
            records={records}
            labels={labels}
            onCancel={() => setAnswering(null)}
            onDone={() => onAnswered(`You approved ${who}'s request. The grant is on its way to the chain.`)}
          />
        ) : answering === "decline" ? (
          <DeclinePanel request={request} onCancel={() => setAnswering(null)} onDone={() => onAnswered(`You declined ${who}'s request.`)} />
        ) : (
          <div className="actions">
            <button type="button" className="primary" onClick={() => setAnswering("approve")} aria-label={`Approve ${who}'s request…`}>
              Approve…
            </button>
            <button type="button" onClick={() => setAnswering("decline")} aria-label={`Decline ${who}'s request…`}>
              Decline…
            </button>
          </div>
        )}
      </article>
    </li>
  );
}

function AnsweredRow({ request, labels }: { request: AccessRequest; labels: Labels }) {
  return (
    <tr data-request={request.id}>
      <td data-label="Who">{doctorName(request)}</td>
      <td data-label="Asked for">{scopeWords(request.scope, labels)}</td>
      <td data-label="Answer">
        {request.status === "approved" ? (
          <>
            Approved: {scopeWords(request.granted_scope || request.scope, labels)}
            {request.consent ? (
              <>
                {" "}
                <StatusBadge consent={request.consent} />
                <ChainFacts consent={request.consent} />
              </>
            ) : null}
          </>
        ) : (
          <>Declined{request.decline_note ? `: ${request.decline_note}` : ""}</>
        )}
      </td>
      <td data-label="When">{formatDateTime(request.decided_at)}</td>
    </tr>
  );
}

export function Requests() {
  const loaded = useLoad(listAccessRequests, []);
  const records = useLoad(() => listRecords({ limit: 500 }), []);
  const [said, setSaid] = useState("");
  const all = loaded.data ?? [];
  const pending = all.filter((r) => r.status === "pending");
  const answered = all.filter((r) => r.status !== "pending");
  const myRecords = records.data?.records ?? [];
  const labels: Labels = new Map(myRecords.map((r) => [r.id, recordLabel(r)]));
  useRefreshWhile(
    answered.some((r) => r.consent && consentState(r.consent).inFlight),
    loaded.refresh,
  );

  return (
    <Page title="Access requests" intro="Doctors who ask to see your records. Nothing is shared until you approve and sign.">
      <p className="live" role="status" aria-live="polite">
        {said}
      </p>
      <ConnectionWatch error={loaded.data ? loaded.error : null} />
      {loaded.error && !loaded.data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="access requests" /> : null}
      {loaded.data ? (
        <>
          <h2>Waiting for your answer</h2>
          {pending.length ? (
            <ul className="card-list">
              {pending.map((request) => (
                <PendingRequest
                  key={request.id}
                  request={request}
                  records={myRecords}
                  labels={labels}
                  onAnswered={(words) => {
                    setSaid(words);
                    void loaded.refresh();
                  }}
                />
              ))}
            </ul>
          ) : (
            <Empty>No request is waiting for you.</Empty>
          )}
          {answered.length ? (
            <>
              <h2>Answered</h2>
              <table className="cards">
                <caption className="visually-hidden">Requests you answered</caption>
                <thead>
                  <tr>
                    <th scope="col">Who</th>
                    <th scope="col">Asked for</th>
                    <th scope="col">Your answer</th>
                    <th scope="col">When</th>
                  </tr>
                </thead>
                <tbody>
                  {answered.map((request) => (
                    <AnsweredRow key={request.id} request={request} labels={labels} />
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
        </>
      ) : null}
    </Page>
  );
}
