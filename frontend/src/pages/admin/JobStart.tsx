// Starting a ready job: now, once at a time, or periodically (each firing runs the job's rounds again,
// pinned to a later block). Checked in the page, then by the API, whose `schedule.*` error lands next to
// its control.
import { useState, type FormEvent } from "react";
import type { TrainingJobDetail } from "../../api/types";
import { FormError, RadioGroup, TextField, type FormErrors } from "../../components/Fields";
import { startJob } from "../../lib/trainingApi";
import {
  MIN_PERIOD_S,
  SCHEDULE_FIELDS,
  checkSchedule,
  scheduleBody,
  trainingFormErrors,
  type ScheduleForm,
} from "../../lib/trainingForm";

export function JobStart({ job, onDone }: { job: TrainingJobDetail; onDone: () => void }) {
  const [form, setForm] = useState<ScheduleForm>({ kind: "now", at: "", every: "3600" });
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = checkSchedule(form);
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      await startJob(job.id, scheduleBody(form));
      onDone();
    } catch (failure) {
      setErrors(trainingFormErrors(failure, SCHEDULE_FIELDS));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="form panel" onSubmit={(event) => void submit(event)} noValidate aria-labelledby="start-title">
      <h2 id="start-title">Start</h2>
      <p>Every hospital approved the plan on chain: the job is ready.</p>
      <RadioGroup
        id="kind"
        label="When"
        value={form.kind}
        onChange={(kind) => setForm((f) => ({ ...f, kind: kind as ScheduleForm["kind"] }))}
        choices={[
          { value: "now", label: "Now" },
          { value: "at", label: "At a time" },
          { value: "periodic", label: "Periodically", hint: `every ${job.rounds} rounds run again on newer consents` },
        ]}
        error={errors.kind}
      />
      {form.kind === "at" ? (
        <TextField
          id="at"
          label="Start at"
          type="datetime-local"
          value={form.at}
          onChange={(e) => setForm((f) => ({ ...f, at: e.target.value }))}
          error={errors.at}
        />
      ) : null}
      {form.kind === "periodic" ? (
        <TextField
          id="every"
          label="Every (seconds)"
          inputMode="numeric"
          hint={`At least ${MIN_PERIOD_S}; 86400 is daily.`}
          value={form.every}
          onChange={(e) => setForm((f) => ({ ...f, every: e.target.value }))}
          error={errors.every}
        />
      ) : null}
      <FormError errors={errors} />
      <div className="actions">
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? "Starting…" : form.kind === "now" ? "Start now" : "Schedule"}
        </button>
      </div>
    </form>
  );
}
