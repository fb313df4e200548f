// Adding a record to a patient's chart, as their doctor: an observation from a few fields (made into
// FHIR by lib/observation.ts), or FHIR JSON pasted as is. The API lets a doctor add what an active
// TREATMENT consent covers (the whole chart or the record's category); its refusal is said in words,
// and a FHIR error lands next to the field it is about.
import { useState, type FormEvent } from "react";
import { api, ApiError, call } from "../../api/client";
import type { RecordMeta } from "../../api/types";
import { FORM, FormError, RadioGroup, SelectField, TextAreaField, TextField, type FormErrors } from "../../components/Fields";
import { recordLabel } from "../../components/RecordTable";
import { CATEGORY_WORDS } from "../../lib/consent";
import { todayIso } from "../../lib/format";
import {
  buildObservation,
  checkObservationForm,
  chooseMeasurement,
  MEASUREMENTS,
  measurementOf,
  OBSERVATION_CATEGORIES,
  observationFieldOf,
  OTHER,
  type ObservationCategory,
  type ObservationForm,
} from "../../lib/observation";
import { checkUpload, type Upload } from "../../lib/recordUpload";
import { consentRefusal } from "../../lib/refusals";
import { Link } from "../../router";

type Mode = "observation" | "json";

const MODES = [
  { value: "observation", label: "An observation", hint: "a measurement and its value" },
  { value: "json", label: "FHIR JSON", hint: "one resource, or a Bundle of several" },
];

function blankObservation(): ObservationForm {
  const first = MEASUREMENTS[0] as (typeof MEASUREMENTS)[number];
  return { measurement: first.code, code: "", display: "", category: first.category, value: "", unit: first.unit, date: todayIso() };
}

async function send(patient: string, upload: Upload): Promise<RecordMeta[]> {
  if (upload.kind === "record") {
    return [await call(api.POST("/api/records", { body: { patient, resource: upload.resource } }))];
  }
  const report = await call(api.POST("/api/records/import", { body: { patient, bundle: upload.bundle } }));
  return report.records;
}

/** Where the API's error goes: a FHIR path next to its field (or the JSON); the rest for the form. */
function errorsFrom(error: unknown, mode: Mode, form: ObservationForm): FormErrors {
  if (error instanceof ApiError) {
    if (error.code === "unknown_patient") return { [FORM]: "No patient you may add records for has this address." };
    const field = error.field && error.field !== "patient" ? error.field : null;
    if (field && mode === "json") return { json: error.message };
    const own = field ? observationFieldOf(field, form) : null;
    if (own) return { [own]: error.message };
  }
  return { [FORM]: error instanceof Error ? error.message : "Something went wrong in the page." };
}

function ObservationFields({
  form,
  errors,
  onChange,
}: {
  form: ObservationForm;
  errors: FormErrors;
  onChange: (form: ObservationForm) => void;
}) {
  const known = measurementOf(form.measurement);
  return (
    <>
      <SelectField
        id="obs-measurement"
        label="Measurement"
        value={form.measurement}
        error={errors.measurement}
        hint={known ? `LOINC ${known.code}, filed under ${CATEGORY_WORDS[known.category]}.` : "Give its LOINC code below."}
        onChange={(event) => onChange(chooseMeasurement(form, event.target.value))}
      >
        {MEASUREMENTS.map((m) => (
          <option key={m.code} value={m.code}>
            {m.display}
          </option>
        ))}
        <option value={OTHER}>Another LOINC code…</option>
      </SelectField>
      {known ? null : (
        <>
          <TextField
            id="obs-code"
            label="LOINC code"
            value={form.code}
            error={errors.code}
            autoComplete="off"
            spellCheck={false}
            onChange={(event) => onChange({ ...form, code: event.target.value })}
          />
          <TextField
            id="obs-display"
            label="What was measured"
            value={form.display}
            error={errors.display}
            onChange={(event) => onChange({ ...form, display: event.target.value })}
          />
          <SelectField
            id="obs-category"
            label="Category"
            value={form.category}
            error={errors.category}
            onChange={(event) => onChange({ ...form, category: event.target.value as ObservationCategory })}
          >
            {Object.entries(OBSERVATION_CATEGORIES).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </SelectField>
        </>
      )}
      <TextField
        id="obs-value"
        label="Value"
        inputMode="decimal"
        autoComplete="off"
        value={form.value}
        error={errors.value}
        onChange={(event) => onChange({ ...form, value: event.target.value })}
      />
      <TextField
        id="obs-unit"
        label="Unit"
        autoComplete="off"
        spellCheck={false}
        value={form.unit}
        error={errors.unit}
        hint="As UCUM writes it, such as g/dL or mm[Hg]. Leave empty for a count."
        onChange={(event) => onChange({ ...form, unit: event.target.value })}
      />
      <TextField
        id="obs-date"
        type="date"
        label="Day measured"
        value={form.date}
        error={errors.date}
        hint="Optional."
        onChange={(event) => onChange({ ...form, date: event.target.value })}
      />
    </>
  );
}

function Added({ records }: { records: RecordMeta[] }) {
  const [first] = records;
  return (
    <p className="notice" role="status">
      {records.length === 1 && first ? (
        <>
          Added to the chart: {recordLabel(first)}. <Link to={`/records/${first.id}`}>Open it</Link>
        </>
      ) : (
        `Added ${records.length} records to the chart.`
      )}
    </p>
  );
}

export function ChartAddRecord({ patient, onAdded }: { patient: string; onAdded: () => void }) {
  const [mode, setMode] = useState<Mode>("observation");
  const [form, setForm] = useState<ObservationForm>(blankObservation);
  const [json, setJson] = useState("");
  const [errors, setErrors] = useState<FormErrors>({});
  const [refusal, setRefusal] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [added, setAdded] = useState<RecordMeta[] | null>(null);

  const prepare = (): { upload: Upload } | { errors: FormErrors } => {
    if (mode === "json") {
      const checked = checkUpload(json);
      return "problem" in checked ? { errors: { json: checked.problem } } : checked;
    }
    const found = checkObservationForm(form);
    if (Object.keys(found).length) return { errors: found };
    return { upload: { kind: "record", resource: buildObservation(form), resourceType: "Observation" } };
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const ready = prepare();
    setRefusal(null);
    setAdded(null);
    if ("errors" in ready) {
      setErrors(ready.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      setAdded(await send(patient, ready.upload));
      setForm({ ...form, value: "" });
      setJson("");
      onAdded();
    } catch (error) {
      const what = mode === "observation" ? `add ${CATEGORY_WORDS[form.category]}` : "add records of this kind";
      const words = consentRefusal(error, what);
      if (words) setRefusal(words);
      else setErrors(errorsFrom(error, mode, form));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="add-record-title">
      <h2 id="add-record-title">Add a record</h2>
      <p className="hint">
        You may add a record when a treatment consent of this patient covers its category or the whole chart. It is
        sealed into the patient's chart under your name.
      </p>
      {added ? <Added records={added} /> : null}
      <form className="form" onSubmit={(event) => void submit(event)} noValidate aria-labelledby="add-record-title">
        <RadioGroup
          id="add-kind"
          label="What to add"
          choices={MODES}
          value={mode}
          onChange={(value) => {
            setMode(value as Mode);
            setErrors({});
            setRefusal(null);
          }}
        />
        {mode === "observation" ? (
          <ObservationFields form={form} errors={errors} onChange={setForm} />
        ) : (
          <TextAreaField
            id="obs-json"
            label="FHIR JSON"
            value={json}
            spellCheck={false}
            error={errors.json}
            hint='For example {"resourceType": "Condition", …}.'
            onChange={(event) => setJson(event.target.value)}
          />
        )}
        {refusal ? (
          <div className="notice notice-bad" role="alert" data-testid="add-refused">
            <p>
              <strong>Not added.</strong> {refusal}
            </p>
            <p>
              <Link to={`/requests?patient=${encodeURIComponent(patient)}`}>Ask the patient for access</Link>
            </p>
          </div>
        ) : null}
        <FormError errors={errors} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Adding…" : "Add to the chart"}
          </button>
        </div>
      </form>
    </section>
  );
}
