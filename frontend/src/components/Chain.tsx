// Chain facts next to a consent: the status badge and the transaction and block it is in.
import type { Consent } from "../api/types";
import { consentState } from "../lib/consent";
import { shortHex } from "../lib/format";

export function StatusBadge({ consent }: { consent: Consent }) {
  const state = consentState(consent);
  return (
    <span className={`badge badge-${state.tone}`}>
      {state.inFlight ? <span className="spinner" aria-hidden="true" /> : null}
      {state.label}
    </span>
  );
}

export function Hex({ value, label }: { value: string; label: string }) {
  return (
    <code className="hex" title={value} aria-label={`${label} ${value}`}>
      {shortHex(value)}
    </code>
  );
}

export function ChainFacts({ consent }: { consent: Consent }) {
  const state = consentState(consent);
  return (
    <div className="chain-facts">
      {state.problem ? <p className="problem">{state.problem}</p> : null}
      {consent.grant_tx_hash ? (
        <p>
          Granted in block {consent.granted_block ?? "?"}, tx <Hex value={consent.grant_tx_hash} label="transaction" />
        </p>
      ) : null}
      {consent.revoke_tx_hash ? (
        <p>
          Revoked in block {consent.ended_block ?? "?"}, tx <Hex value={consent.revoke_tx_hash} label="transaction" />
        </p>
      ) : null}
    </div>
  );
}
