// The hospital admin's training jobs: every job the hospital takes part in, newest first, with its status
// and round; each opens its own page (progress, charts, versions). New jobs start here.
import { Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { Link } from "../../router";
import { formatDateTime } from "../../lib/format";
import { jobStatus, modelWords } from "../../lib/training";
import { listJobs } from "../../lib/trainingApi";

export function Jobs() {
  const loaded = useLoad(listJobs, []);
  const jobs = loaded.data ?? [];
  return (
    <Page title="Training jobs" intro="Federated training runs your hospital takes part in.">
      <p className="actions">
        <Link to="/training/jobs/new" className="button primary">
          New training job
        </Link>
        <Link to="/training/plans" className="button">
          Plans to approve
        </Link>
      </p>
      {loaded.error ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="training jobs" /> : null}
      {loaded.data && !jobs.length ? <Empty>No training job yet.</Empty> : null}
      {jobs.length ? (
        <table className="cards">
          <caption className="visually-hidden">Training jobs</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Status</th>
              <th scope="col">Rounds</th>
              <th scope="col">Model</th>
              <th scope="col">Hospitals</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => {
              const status = jobStatus(job.status);
              return (
                <tr key={job.id} data-job={job.number}>
                  <td data-label="Job">
                    <Link to={`/training/jobs/${job.number}`}>{job.name}</Link>
                    <span className="hint"> #{job.number}</span>
                  </td>
                  <td data-label="Status">
                    <span className={`badge badge-${status.tone}`}>{status.label}</span>
                  </td>
                  <td data-label="Rounds">
                    {job.current_round} / {job.rounds}
                  </td>
                  <td data-label="Model">{modelWords(job.model)}</td>
                  <td data-label="Hospitals">{job.participants.map((p) => p.hospital.name).join(", ")}</td>
                  <td data-label="Created">
                    {formatDateTime(job.created_at)} <span className="hint">by {job.created_by}</span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </Page>
  );
}
