// Training use: which model versions learned from my records (GET /api/patients/me/training-use).
// Each version lists the training updates of mine it descends from, with the chain reference, the
// update's patient root and my Merkle inclusion proof, which a Verify button checks in this browser
// (lib/trainingProof.ts). Then, per hospital, whether my TRAINING consent is still in force and how to
// stop future use. While a chain reference is still queued, the page follows it.
import { useState } from "react";
import { api, call } from "../../api/client";
import type { ChainRef, TrainingConsentState, TrainingInclusion, TrainingUse as TrainingUseData, TrainingVersionUse } from "../../api/types";
import { Hex } from "../../components/Chain";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { verifyInclusion, type ProofCheck } from "../../lib/trainingProof";
import { Link } from "../../router";
import { useMe } from "../../session";

const pending = (chain: ChainRef) => chain.status === "" || chain.status === "queued";

export function chainInWords(chain: ChainRef): string {
  if (chain.status === "confirmed") return `On chain in block ${chain.block ?? "?"}`;
  if (chain.status === "failed") return "Could not be written to the chain";
  if (chain.status === "queued") return "Queued for the chain";
  return "Not on the chain yet";
}

function ChainLine({ chain }: { chain: ChainRef }) {
  return (
    <>
      {chainInWords(chain)}
      {chain.tx ? (
        <>
          , tx <Hex value={chain.tx} label="transaction" />
        </>
      ) : null}
    </>
  );
}

type Check = { state: "idle" } | { state: "checking" } | { state: "done"; result: ProofCheck } | { state: "failed"; error: Error };

function VerifyProof({ inclusion, name }: { inclusion: TrainingInclusion; name: string }) {
  const me = useMe();
  const [check, setCheck] = useState<Check>({ state: "idle" });
  const run = async () => {
    setCheck({ state: "checking" });
    try {
      setCheck({ state: "done", result: await verifyInclusion(inclusion, me.eth_address ?? "") });
    } catch (error) {
      setCheck({ state: "failed", error: error as Error });
    }
  };
  const result = check.state === "done" ? check.result : null;
  return (
    <div>
      <button type="button" onClick={() => void run()} disabled={check.state === "checking"} aria-label={`Verify the proof for ${name}`}>
        {check.state === "checking" ? "Verifying…" : "Verify"}
      </button>
      <div className="live" role="status" aria-live="polite">
        {result ? (
          <p className={result.reachesRoot ? "notice" : "notice notice-bad"} data-verified={result.reachesRoot}>
            {result.sentence}
          </p>
        ) : null}
        {check.state === "failed" ? <p className="notice notice-bad">The proof could not be checked: {check.error.message}</p> : null}
      </div>
    </div>
  );
}

function Inclusion({ inclusion }: { inclusion: TrainingInclusion }) {
  const name = `job ${inclusion.job.number}, round ${inclusion.round}, ${inclusion.hospital.name}`;
  return (
    <li className="panel">
      <dl className="facts">
        <dt>Hospital</dt>
        <dd>{inclusion.hospital.name}</dd>
        <dt>Round</dt>
        <dd>{inclusion.round}</dd>
        <dt>Records as of</dt>
        <dd>{inclusion.pinned_block === null ? "unknown block" : `block ${inclusion.pinned_block}`}</dd>
        {inclusion.sample_count !== null ? (
          <>
            <dt>Patients in it</dt>
            <dd>{inclusion.sample_count}</dd>
          </>
        ) : null}
        <dt>On chain</dt>
        <dd>
          <ChainLine chain={inclusion.chain} />
        </dd>
        <dt>Patient root</dt>
        <dd>
          <code>{inclusion.patient_root}</code>
          {inclusion.root_matches ? null : <span className="field-error"> The server's tree does not match this root.</span>}
        </dd>
      </dl>
      <details>
        <summary>Your inclusion proof ({inclusion.proof.length === 1 ? "1 step" : `${inclusion.proof.length} steps`})</summary>
        <p>
          Leaf (from your address): <code>{inclusion.leaf}</code>
        </p>
        <ol className="proof">
          {inclusion.proof.map((hash, index) => (
            <li key={`${index}-${hash}`}>
              <code>{hash}</code>
            </li>
          ))}
        </ol>
        <p className="hint">
          OpenZeppelin's MerkleProof.verify(proof, patient root, leaf) checks it the same way, on chain or anywhere.
        </p>
      </details>
      <VerifyProof inclusion={inclusion} name={name} />
    </li>
  );
}

function Version({ version, inclusions }: { version: TrainingVersionUse; inclusions: TrainingInclusion[] }) {
  return (
    <article className="panel" aria-labelledby={`version-${version.job.id}-${version.round}`}>
      <h3 id={`version-${version.job.id}-${version.round}`}>
        {version.job.name} (job {version.job.number}), version {version.round}
      </h3>
      <dl className="facts">
        <dt>Published</dt>
        <dd>
          <ChainLine chain={version.chain} />
        </dd>
        <dt>Weights</dt>
        <dd>
          <Hex value={version.weights_hash} label="weights hash" />
        </dd>
      </dl>
      {inclusions.length ? (
        <>
          <h4>Learned from these training updates with your records</h4>
          <ul className="uses">
            {inclusions.map((inclusion) => (
              <Inclusion key={inclusion.update_id} inclusion={inclusion} />
            ))}
          </ul>
        </>
      ) : null}
    </article>
  );
}

function StopUse({ consents }: { consents: TrainingConsentState[] }) {
  return (
    <section aria-labelledby="stop-title">
      <h2 id="stop-title">Stopping future use</h2>
      <p>
        To stop hospitals training on your records from now on,{" "}
        <Link to="/consents">revoke your TRAINING consent in My consents</Link>. Versions already trained keep what
        they learned.
      </p>
      {consents.length ? (
        <ul>
          {consents.map((state) => (
            <li key={state.hospital.slug}>
              {state.active
                ? `${state.hospital.name}: your TRAINING consent is in force (revoke it to stop future use).`
                : `${state.hospital.name}: no TRAINING consent of yours is in force; your records are not used for new training there.`}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

function Uses({ data }: { data: TrainingUseData }) {
  const byId = new Map(data.updates.map((inclusion) => [inclusion.update_id, inclusion]));
  const inVersions = new Set(data.versions.flatMap((version) => version.learned_from));
  const unpublished = data.updates.filter((inclusion) => !inVersions.has(inclusion.update_id));
  if (!data.updates.length && !data.versions.length) {
    return <Empty>No model has learned from your records.</Empty>;
  }
  return (
    <>
      <h2>Model versions that learned from your records</h2>
      {data.versions.length ? (
        data.versions.map((version) => (
          <Version
            key={`${version.job.id}-${version.round}`}
            version={version}
            inclusions={version.learned_from.flatMap((id) => byId.get(id) ?? [])}
          />
        ))
      ) : (
        <Empty>No model version has been published from your records yet.</Empty>
      )}
      {unpublished.length ? (
        <>
          <h2>Training updates not in a published version yet</h2>
          <ul className="uses">
            {unpublished.map((inclusion) => (
              <Inclusion key={inclusion.update_id} inclusion={inclusion} />
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}

export function TrainingUse() {
  const loaded = useLoad(() => call(api.GET("/api/patients/me/training-use")), []);
  const data = loaded.data;
  const following = !!data && [...data.updates, ...data.versions].some((use) => pending(use.chain));
  useRefreshWhile(following, loaded.refresh);
  return (
    <Page
      title="Training use"
      intro="Hospitals may train shared models on your records only while you give them a TRAINING consent. Here is every model version that learned from your records, with the proof that they were included."
    >
      {loaded.error && !data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {data ? <ConnectionWatch error={loaded.error} /> : null}
      {!data && loaded.loading ? <Loading what="your training use" /> : null}
      {data ? (
        <>
          <Uses data={data} />
          <StopUse consents={data.consents} />
        </>
      ) : null}
    </Page>
  );
}
