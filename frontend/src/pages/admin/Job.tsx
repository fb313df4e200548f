// One training job for a hospital admin: its plan and approvals, start (now, at a time, periodically) and
// cancel, live round progress (followed by polling that backs off and never blocks the page), charts of
// F1 / AUROC / loss per round on the test set and per hospital, its rounds, and its model versions with
// their on-chain references.
import { useState } from "react";
import type { TrainingJobDetail } from "../../api/types";
import { LineChart } from "../../components/Chart";
import { Hex } from "../../components/Chain";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { Link } from "../../router";
import { formatDateTime } from "../../lib/format";
import {
  METRICS,
  approvalWords,
  formatMetric,
  jobIsLive,
  jobStatus,
  metricSeries,
  planInWords,
  roundProgress,
  scheduleWords,
  versionMetric,
} from "../../lib/training";
import { cancelJob, getJob } from "../../lib/trainingApi";
import { JobStart } from "./JobStart";

const FINISHED = ["done", "failed", "cancelled"];

function ChainRef({ chain }: { chain: { status: string; block: number | null; tx: string } }) {
  if (chain.status === "confirmed") {
    return (
      <span data-chain="confirmed">
        block {chain.block ?? "?"}, tx {chain.tx ? <Hex value={chain.tx} label="transaction" /> : "?"}
      </span>
    );
  }
  if (chain.status === "failed") return <span className="badge badge-bad">failed on chain</span>;
  return (
    <span className="badge badge-pending">
      <span className="spinner" aria-hidden="true" />
      on its way to the chain
    </span>
  );
}

function Progress({ job }: { job: TrainingJobDetail }) {
  const progress = roundProgress(job);
  return (
    <section className="panel" aria-labelledby="progress-title">
      <h2 id="progress-title">Progress</h2>
      <progress max={progress.total} value={progress.done} aria-labelledby="progress-title" />
      <p role="status" data-testid="round-progress">
        {progress.label}
      </p>
    </section>
  );
}

function Charts({ job }: { job: TrainingJobDetail }) {
  const hasPoints = job.training_rounds.some((r) => r.kind === "train" && r.status === "done");
  return (
    <section aria-labelledby="charts-title">
      <h2 id="charts-title">Metrics per round</h2>
      {hasPoints ? (
        METRICS.map(({ name, title }) => (
          <LineChart
            key={name}
            id={name}
            title={title}
            series={metricSeries(job.training_rounds, name)}
            domain={name === "loss" ? undefined : [0, 1]}
          />
        ))
      ) : (
        <Empty>The charts fill in as rounds finish.</Empty>
      )}
    </section>
  );
}

function Rounds({ job }: { job: TrainingJobDetail }) {
  if (!job.training_rounds.length) return null;
  return (
    <section aria-labelledby="rounds-title">
      <h2 id="rounds-title">Rounds</h2>
      <table className="cards">
        <caption className="visually-hidden">Rounds</caption>
        <thead>
          <tr>
            <th scope="col">Round</th>
            <th scope="col">Status</th>
            <th scope="col">Pinned block</th>
            <th scope="col">Hospitals</th>
            <th scope="col">Samples</th>
          </tr>
        </thead>
        <tbody>
          {job.training_rounds.map((r) => (
            <tr key={r.number} data-round={r.number}>
              <td data-label="Round">
                {r.number}
                {r.kind === "moments" ? <span className="hint"> (feature statistics)</span> : null}
              </td>
              <td data-label="Status">
                {r.status}
                {r.reason ? <span className="hint"> {r.reason}</span> : null}
              </td>
              <td data-label="Pinned block">{r.pinned_block}</td>
              <td data-label="Hospitals">
                {r.hospitals.accepted ?? 0} of {r.hospitals.dispatched ?? 0} answered
                {r.stragglers.length ? <span className="hint"> · late: {r.stragglers.join(", ")}</span> : null}
              </td>
              <td data-label="Samples">{r.sample_count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Versions({ job }: { job: TrainingJobDetail }) {
  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Model versions</h2>
      {job.model_versions.length ? (
        <table className="cards" data-testid="model-versions">
          <caption className="visually-hidden">Model versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">F1 / AUROC / loss</th>
              <th scope="col">Weights</th>
              <th scope="col">On chain</th>
            </tr>
          </thead>
          <tbody>
            {job.model_versions.map((v) => (
              <tr key={v.round} data-version={v.round}>
                <td data-label="Version">
                  v{v.round} <span className="hint">{formatDateTime(v.created_at)}</span>
                </td>
                <td data-label="F1 / AUROC / loss">
                  {METRICS.map(({ name }) => formatMetric(versionMetric(v, name))).join(" / ")}
                </td>
                <td data-label="Weights">
                  <Hex value={v.weights_hash} label="weights hash" /> <span className="hint">CID</span>{" "}
                  <Hex value={v.cid} label="CID" />
                </td>
                <td data-label="On chain">
                  <ChainRef chain={v.chain} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Empty>No model version yet.</Empty>
      )}
    </section>
  );
}

function Plan({ job }: { job: TrainingJobDetail }) {
  return (
    <section aria-labelledby="plan-title">
      <h2 id="plan-title">Plan</h2>
      <p>
        Plan hash <code className="hex">{job.plan_hash}</code>
      </p>
      <ul className="plain-words">
        {planInWords(job).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <ul>
        {job.participants.map((p) => (
          <li key={p.hospital.slug} data-participant={p.hospital.slug}>
            {p.hospital.name}: {approvalWords(p.approval)}
            {p.approved_block ? ` in block ${p.approved_block}` : ""}
          </li>
        ))}
      </ul>
      {job.status === "draft" || job.status === "approving" ? (
        <p>
          <Link to="/training/plans">Approve the plan</Link> (each hospital's admin approves it before the job can start).
        </p>
      ) : null}
    </section>
  );
}

function CancelButton({ job, onDone }: { job: TrainingJobDetail; onDone: () => void }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await cancelJob(job.id);
      setAsking(false);
      onDone();
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="actions">
      {asking ? (
        <>
          <span>No new round will start. Cancel the job?</span>
          <button type="button" className="danger" disabled={busy} onClick={() => void cancel()}>
            Yes, cancel the job
          </button>
          <button type="button" disabled={busy} onClick={() => setAsking(false)}>
            Keep it
          </button>
        </>
      ) : (
        <button type="button" className="danger" onClick={() => setAsking(true)}>
          Cancel job
        </button>
      )}
      {error ? <ErrorNotice error={error} /> : null}
    </div>
  );
}

export function Job({ id }: { id: string }) {
  const loaded = useLoad(() => getJob(id), [id]);
  const job = loaded.data;
  useRefreshWhile(!!job && jobIsLive(job), loaded.refresh);
  const status = job ? jobStatus(job.status) : null;
  return (
    <Page title={job ? `Training job: ${job.name}` : "Training job"}>
      {loaded.error && !job ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      <ConnectionWatch error={job ? loaded.error : null} />
      {!job && loaded.loading ? <Loading what="the job" /> : null}
      {job && status ? (
        <>
          <p>
            <span className={`badge badge-${status.tone}`} data-testid="job-status">
              {status.label}
            </span>{" "}
            <span className="hint">
              #{job.number}, created by {job.created_by} {formatDateTime(job.created_at)}
            </span>
          </p>
          {job.failure_reason ? (
            <p className="notice notice-bad" role="alert">
              {job.failure_reason}
            </p>
          ) : null}
          {job.status === "scheduled" ? <p role="status">Scheduled. {scheduleWords(job.schedule)}</p> : null}
          {job.status === "ready" ? <JobStart job={job} onDone={() => void loaded.refresh()} /> : null}
          {!FINISHED.includes(job.status) ? <CancelButton job={job} onDone={() => void loaded.refresh()} /> : null}
          {job.training_rounds.length || job.status === "running" ? <Progress job={job} /> : null}
          <Charts job={job} />
          <Versions job={job} />
          <Rounds job={job} />
          <Plan job={job} />
        </>
      ) : null}
    </Page>
  );
}
