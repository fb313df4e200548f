// A new training job: name, model, strategy, rounds, hospitals, quorum and the local hyper-parameters.
// Checked in the page, then by the API, whose error lands next to the field it names. The job is created
// as a draft: every participating hospital's admin then approves its plan (Training plans), and the job's
// page starts it, now, at a time or periodically.
import { useState, type FormEvent } from "react";
import { loadDirectory } from "../../api/lists";
import { FormError, RadioGroup, SelectField, TextField, type FormErrors } from "../../components/Fields";
import { ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { navigate } from "../../router";
import { useSession } from "../../session";
import { createJob } from "../../lib/trainingApi";
import {
  JOB_FIELDS,
  STRATEGIES,
  checkJobForm,
  emptyJobForm,
  jobBody,
  trainingFormErrors,
  type JobForm,
} from "../../lib/trainingForm";

type NumberKey = "rounds" | "quorum" | "local_epochs" | "batch_size" | "lr" | "round_timeout_s";

const NUMBERS: { key: NumberKey; label: string; hint?: string }[] = [
  { key: "rounds", label: "Rounds" },
  { key: "quorum", label: "Quorum", hint: "How many hospitals must answer for a round to count." },
  { key: "local_epochs", label: "Local epochs", hint: "Passes over its data each hospital makes per round." },
  { key: "batch_size", label: "Batch size" },
  { key: "lr", label: "Learning rate" },
  { key: "round_timeout_s", label: "Round timeout (seconds)" },
];

export function JobNew() {
  const { me } = useSession();
  const mine = me?.hospital?.slug ?? "";
  const directory = useLoad(loadDirectory, []);
  const [form, setForm] = useState<JobForm>(() => emptyJobForm(mine));
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof JobForm>(key: K, value: JobForm[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    // An error goes once its field changes; the next submit checks again.
    setErrors(({ [key === "hidden" ? "model" : key]: _fixed, ...rest }) => rest);
  };
  const toggleHospital = (slug: string, on: boolean) =>
    set("hospitals", on ? [...form.hospitals, slug] : form.hospitals.filter((s) => s !== slug));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = checkJobForm(form, mine);
    setErrors(found);
    if (Object.keys(found).length) {
      document.getElementById(Object.keys(found)[0] ?? "")?.focus();
      return;
    }
    setBusy(true);
    try {
      const job = await createJob(jobBody(form));
      navigate(`/training/plans?created=${job.number}`);
    } catch (failure) {
      setErrors(trainingFormErrors(failure, JOB_FIELDS));
    } finally {
      setBusy(false);
    }
  };

  const hospitals = (directory.data?.hospitals ?? []).filter((h) => h.active);
  return (
    <Page title="New training job" intro="The plan (model, strategy, rounds and hyper-parameters) is what each hospital approves.">
      {directory.error ? <ErrorNotice error={directory.error} onRetry={directory.reload} /> : null}
      {!directory.data && directory.loading ? <Loading what="the hospitals" /> : null}
      <form className="form" onSubmit={(event) => void submit(event)} noValidate>
        <TextField id="name" label="Name" value={form.name} onChange={(e) => set("name", e.target.value)} error={errors.name} />
        <RadioGroup
          id="model"
          label="Model"
          value={form.model}
          onChange={(value) => set("model", value as JobForm["model"])}
          choices={[
            { value: "logistic", label: "Logistic regression" },
            { value: "mlp", label: "Neural network (MLP)" },
          ]}
          error={errors.model}
        />
        {form.model === "mlp" ? (
          <TextField
            id="hidden"
            label="Hidden layer widths"
            hint="Comma-separated, e.g. 32, 16."
            value={form.hidden}
            onChange={(e) => set("hidden", e.target.value)}
          />
        ) : null}
        <SelectField id="strategy" label="Aggregation strategy" value={form.strategy} onChange={(e) => set("strategy", e.target.value)} error={errors.strategy}>
          {STRATEGIES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </SelectField>
        <fieldset className="field" id="hospitals" tabIndex={-1} aria-describedby={errors.hospitals ? "hospitals-error" : undefined}>
          <legend>Hospitals taking part</legend>
          {hospitals.map((h) => (
            <div className="radio" key={h.slug}>
              <input
                type="checkbox"
                id={`hospital-${h.slug}`}
                checked={form.hospitals.includes(h.slug)}
                onChange={(e) => toggleHospital(h.slug, e.target.checked)}
                // The stylesheet sizes radios only; a checkbox the same way (set through the DOM, CSP-safe).
                style={{ minHeight: "auto", width: "1.1rem", height: "1.1rem" }}
              />
              <label htmlFor={`hospital-${h.slug}`}>
                {h.name}
                {h.slug === mine ? <span className="hint"> (yours)</span> : null}
              </label>
            </div>
          ))}
          {errors.hospitals ? (
            <p className="field-error" id="hospitals-error">
              {errors.hospitals}
            </p>
          ) : null}
        </fieldset>
        {NUMBERS.map(({ key, label, hint }) => (
          <TextField
            key={key}
            id={key}
            label={label}
            hint={hint}
            inputMode={key === "lr" ? "decimal" : "numeric"}
            value={form[key]}
            onChange={(e) => set(key, e.target.value)}
            error={errors[key]}
          />
        ))}
        <FormError errors={errors} />
        <div className="actions">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Creating…" : "Create job"}
          </button>
        </div>
      </form>
    </Page>
  );
}
