// One record, opened through the API's one door (consent checked, the access logged, the bytes
// verified). A refusal is said in words: the doctor sees why they may not open it.
import { useState } from "react";
import { api, ApiError, call } from "../api/client";
import type { OpenedRecord } from "../api/types";
import { Hex } from "../components/Chain";
import { ErrorNotice, Loading } from "../components/Notices";
import { Page } from "../components/Page";
import { ReadableRecord } from "../components/ReadableRecord";
import { categoryLabel } from "../components/RecordTable";
import { useLoad } from "../hooks/useLoad";
import { recordFileName, saveAs } from "../lib/download";
import { recordTitle } from "../lib/fhir";
import { formatDateTime } from "../lib/format";
import { Link } from "../router";
import { useMe } from "../session";

const REFUSALS: Record<string, string> = {
  no_consent: "No consent of the patient covers this record for you.",
  revoked: "The patient revoked the consent that let you open this record.",
  revocation_pending: "The patient is revoking the consent that let you open this record.",
  expired: "The consent that let you open this record has expired.",
  not_active_doctor: "You are not listed as an active doctor in the Directory.",
};

export function refusalInWords(error: ApiError): string {
  return REFUSALS[error.code] ?? error.message;
}

function Refused({ error }: { error: ApiError }) {
  return (
    <div className="notice notice-bad" role="alert" data-testid="refused">
      <p>
        <strong>Access refused.</strong> {refusalInWords(error)}
      </p>
      <p className="hint">This attempt is written in the patient's access log.</p>
    </div>
  );
}

const FHIR_JSON = "application/fhir+json";

/** A file record (PDF, image, DICOM): its bytes, opened through the same door (and logged), saved. */
function FileDownload({ id, contentType }: { id: string; contentType: string }) {
  const [state, setState] = useState<{ busy: boolean; error: Error | null; saved: boolean }>({
    busy: false,
    error: null,
    saved: false,
  });
  const name = recordFileName(id, contentType);
  const run = async () => {
    setState({ busy: true, error: null, saved: false });
    try {
      const blob = await call(
        api.GET("/api/records/{record_id}/content", {
          params: { path: { record_id: id }, query: { format: "bin" } },
          parseAs: "blob",
        }),
      );
      saveAs(new Blob([blob], { type: contentType }), name);
      setState({ busy: false, error: null, saved: true });
    } catch (error) {
      setState({ busy: false, error: error as Error, saved: false });
    }
  };
  return (
    <section className="panel" aria-labelledby="file-title">
      <h2 id="file-title">The file</h2>
      <p className="hint">
        A {contentType} file, decrypted on the server after the consent check; downloading it is written in the
        access log.
      </p>
      <p className="actions">
        <button type="button" onClick={() => void run()} disabled={state.busy}>
          {state.busy ? "Preparing…" : `Download ${name}`}
        </button>
      </p>
      <div className="live" role="status" aria-live="polite">
        {state.saved ? <p>Saved as {name}.</p> : null}
      </div>
      {state.error ? <ErrorNotice error={state.error} onRetry={() => void run()} /> : null}
    </section>
  );
}

export function RecordView({ id }: { id: string }) {
  const me = useMe();
  const opened = useLoad<OpenedRecord>(
    () => call(api.GET("/api/records/{record_id}", { params: { path: { record_id: id } } })),
    [id],
  );
  const backLink = me.role === "doctor" ? "/patients" : "/records";

  if (opened.error) {
    const error = opened.error;
    const refused = error instanceof ApiError && (error.status === 403 || error.status === 404);
    return (
      <Page title={refused ? "Record not available" : "Record"}>
        {refused ? <Refused error={error} /> : <ErrorNotice error={error} onRetry={opened.reload} />}
        <p>
          <Link to={backLink}>Back</Link>
        </p>
      </Page>
    );
  }
  if (!opened.data) {
    return (
      <Page title="Record">
        <Loading what="the record" />
      </Page>
    );
  }
  const { record, resource } = opened.data;
  return (
    <Page title={recordTitle(resource)}>
      <dl className="facts inline">
        <dt>Category</dt>
        <dd>{categoryLabel(record.category)}</dd>
        <dt>Type</dt>
        <dd>{record.resource_type}</dd>
        <dt>Author</dt>
        <dd>{record.created_by}</dd>
        <dt>Date</dt>
        <dd>{formatDateTime(record.created_at)}</dd>
        <dt>On chain</dt>
        <dd>{record.anchored ? `anchored in block ${record.anchored_block}` : "waiting for the next anchoring batch"}</dd>
        <dt>Content address</dt>
        <dd>
          <Hex value={record.cid} label="content identifier" />
        </dd>
      </dl>
      <ReadableRecord resource={resource} />
      {record.content_type && record.content_type !== FHIR_JSON ? (
        <FileDownload id={record.id} contentType={record.content_type} />
      ) : null}
      <p className="actions">
        {me.role === "patient" ? (
          <Link className="button" to={`/consents/new?scope=${encodeURIComponent(`record:${record.id}`)}`}>
            Share this record
          </Link>
        ) : null}
        <Link to={me.role === "doctor" ? `/patients/${record.patient_address}` : backLink}>Back</Link>
      </p>
    </Page>
  );
}
