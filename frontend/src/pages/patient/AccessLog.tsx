// My access log: who opened, listed, exported or was refused what, when, why and with what outcome;
// break-glass (emergency) accesses marked; CSV and FHIR downloads; and a Verify button that checks in
// this browser, against the chain itself, that the log is whole (lib/auditVerify.ts; viem reads the
// Anchors contract over JSON-RPC and is loaded only when the button is pressed).
import { useState } from "react";
import { api, ApiError, call, NetworkError } from "../../api/client";
import { PAGE } from "../../api/lists";
import type { AccessLogEntry, BreakGlass } from "../../api/types";
import { Hex as HexText } from "../../components/Chain";
import { Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { verifyAccessLog, type ChainReader, type Hex, type Verdict } from "../../lib/auditVerify";
import { formatDateTime } from "../../lib/format";
import { Link } from "../../router";
import { useMe } from "../../session";

const LOG = "/api/patients/me/access-log";

const ACTION_WORDS: Record<string, string> = {
  open: "Opened",
  deny: "Was refused",
  list: "Listed your records",
  export: "Exported your chart",
  create: "Added",
  break_glass: "Broke the glass: emergency access to your records",
  tamper: "Found tampered with",
  release: "Released for model training",
  predict: "Asked the model about",
};

const PURPOSE_WORDS: Record<string, string> = {
  TREATMENT: "treatment",
  TRAINING: "model training",
  OWNER: "you, the owner",
  EMERGENCY: "an emergency",
};

export function isBreakGlass(entry: Pick<AccessLogEntry, "action" | "legal_basis">): boolean {
  return entry.action === "break_glass" || entry.legal_basis.startsWith("break_glass:");
}

/** The legal basis as a person reads it: "owner", "consent:<id>@<block>", "break_glass:<id>", "none". */
export function basisInWords(basis: string): string {
  if (basis === "owner") return "you own these records";
  if (basis === "none") return "nothing allowed it";
  if (basis.startsWith("break_glass:")) return "break-glass (emergency, reviewed by the hospital)";
  const consent = /^consent:[^@]+@(\d+)$/.exec(basis);
  if (consent) return `your consent (in force at block ${consent[1]})`;
  return basis;
}

function whatInWords(entry: AccessLogEntry) {
  const words = ACTION_WORDS[entry.action] ?? entry.action;
  if (!entry.record_id) return <>{words}</>;
  return (
    <>
      {words}{" "}
      <Link to={`/records/${entry.record_id}`} title={entry.record_id}>
        a record
      </Link>
    </>
  );
}

const ANCHORS_ABI = [
  {
    type: "function",
    name: "auditRootOf",
    stateMutability: "view",
    inputs: [{ name: "batchId", type: "bytes32" }],
    outputs: [{ name: "", type: "bytes32" }],
  },
] as const;

async function viemReader(url: string): Promise<ChainReader> {
  const { createPublicClient, http, TransactionReceiptNotFoundError } = await import("viem");
  const client = createPublicClient({ transport: http(url, { retryCount: 1, timeout: 15_000 }) });
  return {
    url,
    chainId: () => client.getChainId(),
    auditRootOf: (contract: Hex, batchId: Hex) =>
      client.readContract({ address: contract, abi: ANCHORS_ABI, functionName: "auditRootOf", args: [batchId] }),
    receipt: async (hash: Hex) => {
      try {
        const found = await client.getTransactionReceipt({ hash });
        return { blockNumber: found.blockNumber, logs: found.logs.map((log) => ({ address: log.address, topics: log.topics })) };
      } catch (error) {
        if (error instanceof TransactionReceiptNotFoundError) return null;
        throw error;
      }
    },
  };
}

/** A sentence of the verdict, its hashes and addresses in <code> (which wraps anywhere on a phone). */
function Sentence({ text }: { text: string }) {
  const parts = text.split(/(0x[0-9a-fA-F]{16,})/);
  return <>{parts.map((part, i) => (i % 2 ? <code key={i}>{part}</code> : part))}</>;
}

type Check = { state: "idle" } | { state: "checking" } | { state: "done"; verdict: Verdict } | { state: "failed"; error: Error };

function VerifyPanel({ shown }: { shown: readonly AccessLogEntry[] }) {
  const me = useMe();
  const [check, setCheck] = useState<Check>({ state: "idle" });
  const run = async () => {
    setCheck({ state: "checking" });
    try {
      const proof = await call(api.GET("/api/patients/me/access-log/proof"));
      const reader = proof.rpc_url ? await viemReader(proof.rpc_url) : null;
      const verdict = await verifyAccessLog(proof, { patient: me.eth_address ?? "", reader, shown });
      setCheck({ state: "done", verdict });
    } catch (error) {
      setCheck({ state: "failed", error: error as Error });
    }
  };
  const verdict = check.state === "done" ? check.verdict : null;
  return (
    <section className="panel" aria-labelledby="verify-title">
      <h2 id="verify-title">Is my log whole?</h2>
      <p className="hint">
        This page recomputes every entry's hash and the proof of the latest anchored one, and reads the anchored
        root from the Anchors contract on the chain itself: it does not take the server's word for it.
      </p>
      <button type="button" className="primary" onClick={() => void run()} disabled={check.state === "checking"}>
        {check.state === "checking" ? <span className="spinner" aria-hidden="true" /> : null}
        {check.state === "checking" ? "Verifying…" : "Verify"}
      </button>
      <div role="status" aria-live="polite" data-testid="verify-result">
        {check.state === "checking" ? <p>Checking your log against the chain…</p> : null}
        {verdict ? (
          <div className={verdict.status === "whole" ? "notice" : "notice notice-bad"} data-status={verdict.status}>
            <p className="plain-words">{verdict.headline}</p>
            {verdict.problems.length ? (
              <>
                <p>What failed:</p>
                <ul>
                  {verdict.problems.map((problem) => (
                    <li key={problem}>
                      <Sentence text={problem} />
                    </li>
                  ))}
                </ul>
              </>
            ) : null}
            {verdict.facts.length ? (
              <ul>
                {verdict.facts.map((fact) => (
                  <li key={fact}>
                    <Sentence text={fact} />
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
        ) : null}
      </div>
      {check.state === "failed" ? (
        check.error instanceof ApiError || check.error instanceof NetworkError ? (
          <ErrorNotice error={check.error} onRetry={() => void run()} />
        ) : (
          <p className="notice notice-bad" role="alert">
            The check could not run: {check.error.message}
          </p>
        )
      ) : null}
    </section>
  );
}

function BreakGlassNotice() {
  const loaded = useLoad(() => call(api.GET("/api/patients/me/break-glass", { params: { query: { limit: PAGE } } })), []);
  const glasses: BreakGlass[] = loaded.data?.results ?? [];
  if (!glasses.length) return null;
  return (
    <section className="notice notice-bad" aria-labelledby="break-glass-title">
      <h2 id="break-glass-title">Emergency (break-glass) accesses</h2>
      <ul>
        {glasses.map((glass) => (
          <li key={glass.id}>
            {glass.doctor.name || glass.doctor.username} ({glass.hospital}) on {formatDateTime(glass.started_at)}: “
            {glass.reason}”. {glass.live ? "Still open." : "Ended."} Review by the hospital:{" "}
            {glass.review_status === "pending" ? "pending" : glass.review_status}.
          </li>
        ))}
      </ul>
    </section>
  );
}

export function AccessLogTable({ entries }: { entries: readonly AccessLogEntry[] }) {
  return (
    <table className="cards">
      <caption className="visually-hidden">My access log, newest first</caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Who</th>
          <th scope="col">What</th>
          <th scope="col">Why</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        {entries.map((entry) => {
          const glass = isBreakGlass(entry);
          return (
            <tr key={entry.seq} data-seq={entry.seq} data-break-glass={glass ? "true" : undefined}>
              <td data-label="When">
                {formatDateTime(entry.at)} <span className="hint">#{entry.seq}</span>
              </td>
              <td data-label="Who">
                {entry.actor.username ?? "HealthHash"}
                {entry.actor.role ? <span className="hint"> ({entry.actor.role.replace("_", " ")})</span> : null}
                {entry.actor.address ? (
                  <>
                    {" "}
                    <HexText value={entry.actor.address} label="address" />
                  </>
                ) : null}
              </td>
              <td data-label="What">
                {glass ? <span className="badge badge-bad">Break-glass</span> : null} {whatInWords(entry)}
              </td>
              <td data-label="Why">
                For {PURPOSE_WORDS[entry.purpose] ?? entry.purpose}; {basisInWords(entry.legal_basis)}
                {entry.reason ? <>: “{entry.reason}”</> : null}
              </td>
              <td data-label="Outcome">
                <span className={`badge ${entry.outcome === "allowed" ? "badge-ok" : "badge-bad"}`}>{entry.outcome}</span>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

type LogPage = { count: number; results: AccessLogEntry[] };

async function loadLog(limit: number): Promise<LogPage> {
  const page = await call(api.GET(LOG, { params: { query: { limit } } }));
  // The same path also answers the CSV and FHIR downloads; asked for JSON, it gives a page of entries.
  if (typeof page !== "object" || !Array.isArray(page.results)) throw new Error("The access log came back in another format.");
  return page as LogPage;
}

export function AccessLog() {
  const [pages, setPages] = useState(1);
  const loaded = useLoad(() => loadLog(PAGE * pages), [pages]);
  const entries = loaded.data?.results ?? [];
  return (
    <Page
      title="Access log"
      intro="Everyone who opened, listed, exported or was refused your records: when, why and on what grounds."
    >
      <BreakGlassNotice />
      <VerifyPanel shown={entries} />
      <p className="actions">
        <a className="button" href={`${LOG}?format=csv`} download="access-log.csv">
          Download CSV
        </a>
        <a className="button" href={`${LOG}?format=fhir`} download="access-log.fhir.json">
          Download FHIR (AuditEvent Bundle)
        </a>
      </p>
      {loaded.error ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="your access log" /> : null}
      {loaded.data ? (
        entries.length ? (
          <>
            <p className="count" role="status">
              {loaded.data.count === 1 ? "1 entry" : `${loaded.data.count} entries`}
            </p>
            <AccessLogTable entries={entries} />
            {entries.length < loaded.data.count ? (
              <button type="button" onClick={() => setPages((n) => n + 1)} disabled={loaded.loading}>
                {loaded.loading ? "Loading…" : "Show older"}
              </button>
            ) : null}
          </>
        ) : (
          <Empty>Nobody has accessed your records yet.</Empty>
        )
      ) : null}
    </Page>
  );
}
