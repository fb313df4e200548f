// Grant access: pick a doctor or hospital from the Directory, what (chart, a category, one record),
// why and until when; read in plain words what will be signed (the server checks the terms first);
// confirm with the password that unlocks the managed key; then follow the grant until it is mined.
import { useMemo, useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import { getConsent, listRecords, loadDirectory, type Directory } from "../../api/lists";
import type { Consent, Purpose } from "../../api/types";
import { ChainFacts, StatusBadge } from "../../components/Chain";
import { FORM, FormError, RadioGroup, SelectField, TextField, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { PasswordConfirmForm } from "../../components/PasswordConfirmForm";
import { WalletSign } from "../../components/WalletSign";
import { categoryLabel, recordLabel } from "../../components/RecordTable";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { CATEGORY_WORDS, consentState, grantSentence } from "../../lib/consent";
import { formErrorsFrom } from "../../lib/errors";
import { endOfDayIso, formatDate, todayIso } from "../../lib/format";
import type { TypedPayload } from "../../lib/wallet";
import { Link, useLocation } from "../../router";
import { useMe } from "../../session";

type ScopeKind = "chart" | "category" | "record";

export type GrantForm = {
  grantee: string;
  scopeKind: ScopeKind;
  category: string;
  record: string;
  purpose: Purpose;
  expiry: string; // yyyy-mm-dd or ""
};

export function scopeOf(form: GrantForm): string {
  if (form.scopeKind === "category") return `category:${form.category}`;
  if (form.scopeKind === "record") return `record:${form.record}`;
  return "chart";
}

/** The page's own check, before the API's: the same rules the API applies, said next to each field. */
export function checkGrantForm(form: GrantForm, today: string = todayIso()): FormErrors {
  const errors: FormErrors = {};
  if (!form.grantee) errors.grantee = "Choose who gets access.";
  if (form.scopeKind === "category" && !form.category) errors.category = "Choose a category.";
  if (form.scopeKind === "record" && !form.record) errors.record = "Choose a record.";
  if (form.expiry && form.expiry < today) errors.expiry = "The expiry must be today or later.";
  return errors;
}

/** Where an API error about a term belongs on this form. */
function fieldOfTerm(form: GrantForm, errors: FormErrors): FormErrors {
  const moved: FormErrors = {};
  for (const [name, message] of Object.entries(errors)) {
    if (name === "scope") moved[form.scopeKind === "chart" ? "scopeKind" : form.scopeKind] = message;
    else if (name === "expires_at") moved.expiry = message;
    else moved[name] = message;
  }
  return moved;
}

const API_FIELDS = ["grantee", "scope", "purpose", "expires_at", "password"] as const;

type Prepared = { domain: { name?: string; chainId?: number; verifyingContract?: string }; message: Record<string, unknown> };

export function Grant() {
  const me = useMe();
  const { query } = useLocation();
  const preset = query.get("scope") ?? "";
  const [form, setForm] = useState<GrantForm>(() => ({
    grantee: query.get("grantee") ?? "",
    scopeKind: preset.startsWith("record:") ? "record" : preset.startsWith("category:") ? "category" : "chart",
    category: preset.startsWith("category:") ? preset.slice(9) : "",
    record: preset.startsWith("record:") ? preset.slice(7) : "",
    purpose: "TREATMENT",
    expiry: "",
  }));
  const [errors, setErrors] = useState<FormErrors>({});
  const [step, setStep] = useState<"edit" | "review">("edit");
  const [prepared, setPrepared] = useState<Prepared | null>(null);
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [granted, setGranted] = useState<Consent | null>(null);

  const directory = useLoad<Directory>(loadDirectory, []);
  const records = useLoad(() => listRecords({ limit: 500 }), []);
  const set = (patch: Partial<GrantForm>) => setForm((current) => ({ ...current, ...patch }));

  const grantee = useMemo(() => {
    const doctor = directory.data?.doctors.find((d) => d.eth_address === form.grantee);
    if (doctor) return `${doctor.name} (${doctor.hospital.name})`;
    const hospital = directory.data?.hospitals.find((h) => h.account_address === form.grantee);
    return hospital ? hospital.name : form.grantee;
  }, [directory.data, form.grantee]);
  const chosenRecord = records.data?.records.find((r) => r.id === form.record);
  const terms = () => ({
    grantee: form.grantee,
    scope: scopeOf(form),
    purpose: form.purpose,
    expires_at: form.expiry ? endOfDayIso(form.expiry) : null,
  });

  const review = async (event: FormEvent) => {
    event.preventDefault();
    const problems = checkGrantForm(form);
    setErrors(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      // The server checks the terms as it would a real grant and answers with what is to be signed.
      const payload = await call(api.POST("/api/consents/typed-data", { body: { action: "grant", ...terms() } }));
      setPrepared(payload as unknown as Prepared);
      setStep("review");
    } catch (error) {
      setErrors(fieldOfTerm(form, formErrorsFrom(error, API_FIELDS)));
    } finally {
      setBusy(false);
    }
  };

  const grant = async (password: string) => {
    setGranted(await call(api.POST("/api/consents", { body: { ...terms(), password } })));
  };

  // A refused term goes back to the form, where its error is said; a refused password stays here.
  const refused = (error: unknown): FormErrors => {
    const found = fieldOfTerm(form, formErrorsFrom(error, API_FIELDS));
    if (!found.password && !found[FORM]) setStep("edit");
    setErrors(found);
    return found;
  };

  // Wallet users: the wallet signed the exact payload the server prepared; it goes back with its signature.
  const submitSigned = async (signature: string) => {
    setBusy(true);
    try {
      const typed_data = prepared as unknown as Record<string, unknown>;
      setGranted(await call(api.POST("/api/consents", { body: { typed_data, signature } })));
    } catch (error) {
      // A refused signed payload (field typed_data.…) is said for the whole form.
      setErrors(fieldOfTerm(form, formErrorsFrom(error, API_FIELDS)));
    } finally {
      setBusy(false);
    }
  };

  if (granted) return <GrantProgress initial={granted} sentence={grantSentence({ granteeName: grantee, scope: scopeOf(form), purpose: form.purpose, expiresAt: terms().expires_at, recordLabel: chosenRecord && recordLabel(chosenRecord) })} />;

  if (directory.error) {
    return (
      <Page title="Grant access">
        <ErrorNotice error={directory.error} onRetry={directory.reload} />
      </Page>
    );
  }
  if (!directory.data) {
    return (
      <Page title="Grant access">
        <Loading what="the directory" />
      </Page>
    );
  }

  if (step === "review" && prepared) {
    const message = prepared.message;
    const expiresAt = terms().expires_at;
    const facts = (
      <>
        <p className="plain-words" data-testid="grant-sentence">
          {grantSentence({ granteeName: grantee, scope: scopeOf(form), purpose: form.purpose, expiresAt, recordLabel: chosenRecord && recordLabel(chosenRecord) })}
        </p>
        <h2>What your {me.key_kind === "wallet" ? "wallet" : "key"} will sign</h2>
        <dl className="facts">
          <dt>Grant to</dt>
          <dd>
            <code className="address">{String(message.grantee ?? form.grantee)}</code>
          </dd>
          <dt>Scope</dt>
          <dd>
            <code>{String(message.scope ?? scopeOf(form))}</code>
          </dd>
          <dt>Purpose</dt>
          <dd>{form.purpose}</dd>
          <dt>Expires</dt>
          <dd>{expiresAt ? formatDate(expiresAt) : "never (until revoked)"}</dd>
          <dt>Contract</dt>
          <dd>
            {prepared.domain.name ?? "ConsentRegistry"} at <code className="address">{prepared.domain.verifyingContract}</code>, chain{" "}
            {prepared.domain.chainId}
          </dd>
        </dl>
      </>
    );
    return (
      <Page title="Check and sign">
        {me.key_kind === "wallet" ? (
          <form className="form" onSubmit={(event) => event.preventDefault()} noValidate>
            {facts}
            <FormError errors={errors} />
            <WalletSign
              payload={prepared as unknown as TypedPayload}
              address={me.eth_address ?? ""}
              label="Sign in my wallet and grant"
              disabled={busy}
              onSigned={submitSigned}
            />
            <div className="actions">
              <button type="button" onClick={() => setStep("edit")} disabled={busy}>
                Change
              </button>
            </div>
          </form>
        ) : (
          <PasswordConfirmForm
            id="password"
            className="form"
            action="Sign and grant"
            missing="Enter your password to sign the grant."
            hint="It unlocks your key for this one signature; HealthHash relays the signed grant to the chain for you."
            confirm={grant}
            refused={refused}
            onCancel={() => setStep("edit")}
            cancelLabel="Change"
            password={password}
            onPasswordChange={setPassword}
          >
            {facts}
          </PasswordConfirmForm>
        )}
      </Page>
    );
  }

  const { doctors, hospitals } = directory.data;
  return (
    <Page title="Grant access">
      <form className="form" onSubmit={review} noValidate>
        <FormError errors={errors} />
        <SelectField id="grantee" label="Who gets access" value={form.grantee} onChange={(e) => set({ grantee: e.target.value })} error={errors.grantee}>
          <option value="">Choose a doctor or a hospital</option>
          <optgroup label="Doctors">
            {doctors.map((doctor) => (
              <option key={doctor.id} value={doctor.eth_address}>
                {doctor.name} ({doctor.hospital.name})
              </option>
            ))}
          </optgroup>
          <optgroup label="Hospitals">
            {hospitals.map((hospital) => (
              <option key={hospital.slug} value={hospital.account_address}>
                {hospital.name}
              </option>
            ))}
          </optgroup>
        </SelectField>
        <RadioGroup
          id="scopeKind"
          label="What they may see"
          value={form.scopeKind}
          onChange={(value) => set({ scopeKind: value as ScopeKind })}
          error={errors.scopeKind}
          choices={[
            { value: "chart", label: "My whole chart" },
            { value: "category", label: "One category of records" },
            { value: "record", label: "One record" },
          ]}
        />
        {form.scopeKind === "category" ? (
          <SelectField id="category" label="Category" value={form.category} onChange={(e) => set({ category: e.target.value })} error={errors.category}>
            <option value="">Choose a category</option>
            {Object.keys(CATEGORY_WORDS).map((name) => (
              <option key={name} value={name}>
                {categoryLabel(name)}
              </option>
            ))}
          </SelectField>
        ) : null}
        {form.scopeKind === "record" ? (
          <SelectField id="record" label="Record" value={form.record} onChange={(e) => set({ record: e.target.value })} error={errors.record}>
            <option value="">{records.data ? "Choose a record" : "Loading your records…"}</option>
            {(records.data?.records ?? []).map((record) => (
              <option key={record.id} value={record.id}>
                {recordLabel(record)}
              </option>
            ))}
          </SelectField>
        ) : null}
        <RadioGroup
          id="purpose"
          label="Why"
          value={form.purpose}
          onChange={(value) => set({ purpose: value as Purpose })}
          error={errors.purpose}
          choices={[
            { value: "TREATMENT", label: "Treatment", hint: "to look after you" },
            { value: "TRAINING", label: "Training", hint: "to improve the hospitals' shared model" },
          ]}
        />
        <TextField
          id="expiry"
          label="Expires on (optional)"
          type="date"
          min={todayIso()}
          value={form.expiry}
          onChange={(e) => set({ expiry: e.target.value })}
          error={errors.expiry}
          hint="Leave empty to keep it until you revoke it."
        />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Checking…" : "Review"}
          </button>
          <Link to="/consents">Cancel</Link>
        </div>
      </form>
    </Page>
  );
}

const STEPS = ["Signed with your key", "Sent to the chain", "Mined: access is active"];

function stepReached(consent: Consent): number {
  if (consent.status === "pending") return consent.grant_outbox_status === "sent" ? 1 : 0;
  return 2;
}

export function GrantProgress({ initial, sentence }: { initial: Consent; sentence: string }) {
  const followed = useLoad(() => getConsent(initial.id), [initial.id]);
  const consent = followed.data ?? initial;
  const state = consentState(consent);
  useRefreshWhile(state.inFlight, followed.refresh);
  const reached = stepReached(consent);
  const failed = consent.status === "failed";
  return (
    <Page title={failed ? "The grant failed" : state.inFlight ? "Granting access…" : "Access granted"}>
      <p className="plain-words">{sentence}</p>
      <ol className="steps" aria-label="Progress">
        {STEPS.map((label, index) => (
          <li key={label} className={index <= reached && !failed ? "done" : index === reached + 1 && state.inFlight ? "current" : ""}>
            {label}
            {index <= reached && !failed ? <span className="visually-hidden"> (done)</span> : null}
          </li>
        ))}
      </ol>
      <div role="status" aria-live="polite" className="live">
        <StatusBadge consent={consent} />
        <ChainFacts consent={consent} />
      </div>
      <ConnectionWatch error={followed.error} />
      {state.inFlight ? <p className="hint">You can leave this page: the grant goes on, and My consents shows it.</p> : null}
      <p className="actions">
        <Link className="button" to="/consents">
          Back to my consents
        </Link>
      </p>
    </Page>
  );
}
