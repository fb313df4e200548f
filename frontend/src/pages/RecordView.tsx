// One record, opened through the API's one door (consent checked, the access logged, the bytes
// verified). A refusal is said in words: the doctor sees why they may not open it.
import { api, ApiError, call } from "../api/client";
import type { OpenedRecord } from "../api/types";
import { Hex } from "../components/Chain";
import { ErrorNotice, Loading } from "../components/Notices";
import { Page } from "../components/Page";
import { ReadableRecord } from "../components/ReadableRecord";
import { categoryLabel } from "../components/RecordTable";
import { useLoad } from "../hooks/useLoad";
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
