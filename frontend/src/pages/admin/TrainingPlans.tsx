// The hospital admin's training plans: those waiting for this hospital's approval, each with its plan hash
// and what it contains in words; the admin approves with the password (the managed key signs the hash,
// the API relays it), and the page follows the approval until it is on chain.
import type { TrainingJob } from "../../api/types";
import { Hex } from "../../components/Chain";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { PasswordConfirmForm } from "../../components/PasswordConfirmForm";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { Link, useLocation } from "../../router";
import { useSession } from "../../session";
import { approvalQueuedBy, approvalWords, awaitsApprovalBy, jobStatus, planInWords } from "../../lib/training";
import { approveJob, listJobs } from "../../lib/trainingApi";
import { trainingFormErrors } from "../../lib/trainingForm";

function PlanFacts({ job }: { job: TrainingJob }) {
  return (
    <>
      <p>
        Plan hash <code className="hex plan-hash" data-testid="plan-hash">{job.plan_hash}</code>
      </p>
      <ul className="plain-words" aria-label="What the plan contains">
        {planInWords(job).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <p className="hint">
        {job.participants.map((p) => `${p.hospital.name}: ${approvalWords(p.approval)}`).join(" · ")}
      </p>
    </>
  );
}

function ApproveForm({ job, onDone }: { job: TrainingJob; onDone: () => void }) {
  return (
    <PasswordConfirmForm
      id={`password-${job.number}`}
      className="form narrow"
      label="Your password, to sign the approval"
      autoFocus={false}
      action="Approve this plan"
      actionClassName="button primary"
      missing="Enter your password to sign the approval."
      confirm={async (password) => {
        await approveJob(job.id, password);
        onDone();
      }}
      refused={(failure) => trainingFormErrors(failure, ["password"])}
      formErrorBelow
      reusable
    >
      <p>Approving signs this plan hash with your hospital's key; it is recorded on chain.</p>
    </PasswordConfirmForm>
  );
}

export function TrainingPlans() {
  const { me } = useSession();
  const slug = me?.hospital?.slug ?? "";
  const { query } = useLocation();
  const created = query.get("created");
  const loaded = useLoad(listJobs, []);
  const jobs = loaded.data ?? [];
  const waiting = jobs.filter((job) => awaitsApprovalBy(job, slug));
  const queued = jobs.filter((job) => approvalQueuedBy(job, slug));
  const approved = jobs.filter(
    (job) =>
      ["draft", "approving", "ready"].includes(job.status) &&
      job.participants.some((p) => p.hospital.slug === slug && p.approval === "approved" && p.approval_plan_hash === job.plan_hash),
  );
  useRefreshWhile(queued.length > 0, loaded.refresh);
  return (
    <Page title="Training plans" intro="Plans of training jobs your hospital takes part in. Its data is used only once you approve.">
      {created ? (
        <p className="notice" role="status">
          Job #{created} created. Each hospital taking part approves its plan before it can start.
        </p>
      ) : null}
      {loaded.error && !loaded.data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      <ConnectionWatch error={loaded.data ? loaded.error : null} />
      {!loaded.data && loaded.loading ? <Loading what="training plans" /> : null}
      {loaded.data ? (
        <>
          <h2>Waiting for your approval</h2>
          {waiting.length ? (
            <ul className="card-list">
              {waiting.map((job) => (
                <li className="card" key={job.id} data-plan={job.number}>
                  <h3>{job.name}</h3>
                  <p className="hint">Proposed by {job.created_by}</p>
                  <PlanFacts job={job} />
                  <ApproveForm job={job} onDone={() => void loaded.refresh()} />
                </li>
              ))}
            </ul>
          ) : (
            <Empty>No plan waits for your approval.</Empty>
          )}
          {queued.length ? (
            <>
              <h2>On their way to the chain</h2>
              <ul className="card-list">
                {queued.map((job) => (
                  <li className="card" key={job.id} data-plan={job.number}>
                    <h3>{job.name}</h3>
                    <p role="status">
                      <span className="badge badge-pending">
                        <span className="spinner" aria-hidden="true" />
                        Approval on its way to the chain
                      </span>
                    </p>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {approved.length ? (
            <>
              <h2>Approved by your hospital</h2>
              <ul className="card-list">
                {approved.map((job) => {
                  const mine = job.participants.find((p) => p.hospital.slug === slug);
                  return (
                    <li className="card" key={job.id} data-plan={job.number}>
                      <h3>
                        <Link to={`/training/jobs/${job.number}`}>{job.name}</Link>
                      </h3>
                      <p>
                        <span className="badge badge-ok">Approved on chain</span> in block {mine?.approved_block ?? "?"}
                        {mine?.approved_tx ? (
                          <>
                            , tx <Hex value={mine.approved_tx} label="transaction" />
                          </>
                        ) : null}
                        . Job: {jobStatus(job.status).label}.
                      </p>
                    </li>
                  );
                })}
              </ul>
            </>
          ) : null}
        </>
      ) : null}
    </Page>
  );
}
