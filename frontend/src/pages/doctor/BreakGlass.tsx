// Break-glass: emergency access to a patient's records without consent. A written reason is required,
// and the page says before anything happens that the patient will see it and the hospital will review it.
// The API applies the same rules again (an active doctor, a known patient, a reason of 10+ characters).
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { BreakGlass as BreakGlassRow } from "../../api/types";
import { FormError, TextField, type FormErrors } from "../../components/Fields";
import { ErrorNotice } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { formErrorsFrom } from "../../lib/errors";
import { formatDateTime, shortHex } from "../../lib/format";
import { Link, useLocation } from "../../router";

export const MIN_REASON_CHARS = 10;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export type BreakGlassForm = { patient: string; reason: string };

export function checkBreakGlassForm(form: BreakGlassForm): FormErrors {
  const errors: FormErrors = {};
  if (!ADDRESS.test(form.patient.trim())) errors.patient = "Enter the patient's Ethereum address (0x and 40 hex digits).";
  if (form.reason.trim().length < MIN_REASON_CHARS) {
    errors.reason = `Say why this is an emergency (at least ${MIN_REASON_CHARS} characters).`;
  }
  return errors;
}

function ReasonField({ value, error, onChange }: { value: string; error?: string; onChange: (value: string) => void }) {
  const described = ["reason-hint", error ? "reason-error" : ""].filter(Boolean).join(" ");
  return (
    <div className="field">
      <label htmlFor="reason">Reason for emergency access</label>
      <textarea
        id="reason"
        name="reason"
        rows={3}
        required
        minLength={MIN_REASON_CHARS}
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={described}
        onChange={(event) => onChange(event.target.value)}
      />
      <p className="hint" id="reason-hint">
        Required. The patient reads it word for word.
      </p>
      {error ? (
        <p className="field-error" id="reason-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}

function MyBreakGlasses({ generation }: { generation: string }) {
  const loaded = useLoad(() => call(api.GET("/api/break-glass", { params: { query: { limit: 50 } } })), [generation]);
  const rows: BreakGlassRow[] = loaded.data?.results ?? [];
  if (loaded.error) return <ErrorNotice error={loaded.error} onRetry={loaded.reload} />;
  if (!rows.length) return null;
  return (
    <section aria-labelledby="mine-title">
      <h2 id="mine-title">My emergency accesses</h2>
      <ul>
        {rows.map((glass) => (
          <li key={glass.id}>
            <Link to={`/patients/${glass.patient_address}`} title={glass.patient_address}>
              Patient {shortHex(glass.patient_address)}
            </Link>,{" "}
            {formatDateTime(glass.started_at)}: {glass.live ? `open until ${formatDateTime(glass.expires_at)}` : "ended"};
            review {glass.review_status ?? "pending"}.
          </li>
        ))}
      </ul>
    </section>
  );
}

export function BreakGlass() {
  const { query } = useLocation();
  const [form, setForm] = useState<BreakGlassForm>({ patient: query.get("patient") ?? "", reason: "" });
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const [opened, setOpened] = useState<BreakGlassRow | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = checkBreakGlassForm(form);
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const glass = await call(
        api.POST("/api/break-glass", { body: { patient: form.patient.trim(), reason: form.reason.trim() } }),
      );
      setOpened(glass);
      setForm({ patient: "", reason: "" });
    } catch (error) {
      setErrors(formErrorsFrom(error, ["patient", "reason"]));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Break-glass" intro="Emergency access to a patient's records when there is no consent and no time to ask for it.">
      <p className="plain-words" data-testid="break-glass-warning">
        The patient will see this access in their access log, with your name and your reason, and your hospital's
        admin will review it. It ends by itself after a few hours.
      </p>
      {opened ? (
        <div className="notice" role="status">
          <p>
            Emergency access is open until {formatDateTime(opened.expires_at)}.{" "}
            <Link to={`/patients/${opened.patient_address}`}>Open the patient's chart</Link>
          </p>
        </div>
      ) : null}
      <form className="form narrow" onSubmit={(event) => void submit(event)} noValidate aria-label="Break the glass">
        <FormError errors={errors} />
        <TextField
          id="patient"
          label="Patient's Ethereum address"
          value={form.patient}
          error={errors.patient}
          autoComplete="off"
          spellCheck={false}
          onChange={(event) => setForm({ ...form, patient: event.target.value })}
        />
        <ReasonField value={form.reason} error={errors.reason} onChange={(reason) => setForm({ ...form, reason })} />
        <div className="actions">
          <button type="submit" className="primary danger" disabled={busy}>
            {busy ? "Opening…" : "Break the glass"}
          </button>
        </div>
      </form>
      <MyBreakGlasses generation={opened?.id ?? ""} />
    </Page>
  );
}
