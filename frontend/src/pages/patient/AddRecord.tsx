// Add a record: one FHIR resource or a FHIR Bundle, from a .json file or pasted. The page checks it
// is JSON with a resourceType (lib/recordUpload.ts) and sends it to the call that takes it; the API
// validates the FHIR and its error lands next to the JSON, with the path it names. Then it says what
// was stored and links to it.
import { useState, type ChangeEvent, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { RecordMeta } from "../../api/types";
import { FormError, TextAreaField, TextField, type FormErrors } from "../../components/Fields";
import { Page } from "../../components/Page";
import { categoryLabel } from "../../components/RecordTable";
import { formatDateTime } from "../../lib/format";
import { checkUpload, JSON_FIELD, uploadErrors, type Upload } from "../../lib/recordUpload";
import { Link } from "../../router";

type Skipped = { index?: unknown; resourceType?: unknown; reason?: unknown };
type Stored = { records: RecordMeta[]; skipped: Skipped[] };

async function send(upload: Upload): Promise<Stored> {
  if (upload.kind === "record") {
    const record = await call(api.POST("/api/records", { body: { resource: upload.resource } }));
    return { records: [record], skipped: [] };
  }
  const report = await call(api.POST("/api/records/import", { body: { bundle: upload.bundle } }));
  return { records: report.records, skipped: report.skipped as Skipped[] };
}

function StoredRecord({ record }: { record: RecordMeta }) {
  return (
    <>
      <dl className="facts">
        <dt>Type</dt>
        <dd>{record.resource_type}</dd>
        <dt>Category</dt>
        <dd>{categoryLabel(record.category)}</dd>
        <dt>Record id</dt>
        <dd>
          <code>{record.id}</code>
        </dd>
        <dt>Stored</dt>
        <dd>{formatDateTime(record.created_at)}</dd>
      </dl>
      <p className="actions">
        <Link to={`/records/${record.id}`}>Open the record</Link>
      </p>
    </>
  );
}

function Done({ stored, onAnother }: { stored: Stored; onAnother: () => void }) {
  const { records, skipped } = stored;
  const one = records.length === 1 && skipped.length === 0 ? records[0] : undefined;
  return (
    <Page title={records.length === 1 ? "Record added" : "Records added"}>
      <p className="plain-words" role="status">
        {records.length === 1
          ? "One record was sealed and stored in your chart."
          : `${records.length} records were sealed and stored in your chart.`}
      </p>
      {one ? (
        <StoredRecord record={one} />
      ) : (
        <ul>
          {records.map((record) => (
            <li key={record.id}>
              <Link to={`/records/${record.id}`}>
                {record.resource_type}, {categoryLabel(record.category).toLowerCase()}
              </Link>{" "}
              (record id <code>{record.id}</code>)
            </li>
          ))}
        </ul>
      )}
      {skipped.length ? (
        <>
          <h2>Not stored</h2>
          <p>These entries are not records of a chart (or have no resource), so they were left out:</p>
          <ul>
            {skipped.map((entry, index) => (
              <li key={index}>
                Entry {String(entry.index ?? index)}
                {entry.resourceType ? ` (${String(entry.resourceType)})` : ""}
                {entry.reason ? `: ${String(entry.reason)}` : ""}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <p className="actions">
        <Link to="/records">Back to my records</Link>
        <button type="button" onClick={onAnother}>
          Add another
        </button>
      </p>
    </Page>
  );
}

export function AddRecord() {
  const [text, setText] = useState("");
  const [fileName, setFileName] = useState("");
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const [stored, setStored] = useState<Stored | null>(null);

  const choose = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (!file) return;
    try {
      setText(await file.text());
      setFileName(file.name);
      setErrors({});
    } catch {
      setErrors({ file: `${file.name} could not be read. Choose it again, or paste its JSON below.` });
    }
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const checked = checkUpload(text);
    if ("problem" in checked) {
      setErrors({ [JSON_FIELD]: checked.problem });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      setStored(await send(checked.upload));
    } catch (error) {
      setErrors(uploadErrors(error));
    } finally {
      setBusy(false);
    }
  };

  const another = () => {
    setStored(null);
    setText("");
    setFileName("");
  };

  if (stored) return <Done stored={stored} onAnother={another} />;

  return (
    <Page
      title="Add a record"
      intro="Add one FHIR resource (an Observation, a Condition, …) or a FHIR Bundle of several. It is checked, sealed and stored in your chart."
    >
      <form className="form" onSubmit={(event) => void submit(event)} noValidate>
        <TextField
          id="file"
          type="file"
          label="Choose a .json file"
          accept=".json,application/json,application/fhir+json"
          error={errors.file}
          hint="Or paste the JSON below."
          onChange={(event) => void choose(event)}
        />
        <TextAreaField
          id={JSON_FIELD}
          label="FHIR JSON"
          value={text}
          className="code-input"
          spellCheck={false}
          error={errors[JSON_FIELD]}
          hint={fileName ? `Loaded from ${fileName}: check it here before adding.` : 'For example {"resourceType": "Observation", …}.'}
          onChange={(event) => setText(event.target.value)}
        />
        <FormError errors={errors} />
        <p className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? <span className="spinner" aria-hidden="true" /> : null}
            {busy ? "Adding…" : "Add to my chart"}
          </button>
          <Link to="/records">Cancel</Link>
        </p>
      </form>
    </Page>
  );
}
