// My consents: who may see what, why and until when, each with its status on the chain (the reason
// when it failed, the transaction and block once mined), and a revocation that is followed until
// it is mined, without freezing the page. A password user's key is unlocked by the password; a wallet
// user signs the Revoke the server prepared, exactly as it came.
import { useState } from "react";
import { api, ApiError, call } from "../../api/client";
import { listConsents, listRecords } from "../../api/lists";
import type { Consent } from "../../api/types";
import { ChainFacts, StatusBadge } from "../../components/Chain";
import { FormError, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { PasswordConfirmForm } from "../../components/PasswordConfirmForm";
import { recordLabel } from "../../components/RecordTable";
import { WalletSign } from "../../components/WalletSign";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { canRevoke, consentState, granteeName, purposeInWords, revokeSentence, scopeInWords } from "../../lib/consent";
import { formErrorsFrom } from "../../lib/errors";
import { formatDate } from "../../lib/format";
import type { TypedPayload } from "../../lib/wallet";
import { Link } from "../../router";
import { useMe } from "../../session";

type RecordLabels = ReadonlyMap<string, string>;

function labelOf(consent: Consent, labels: RecordLabels): string | undefined {
  return consent.scope.startsWith("record:") ? labels.get(consent.scope.slice("record:".length)) : undefined;
}

type PanelProps = {
  consent: Consent;
  recordLabel: string | undefined;
  onDone: (c: Consent) => void;
  onCancel: () => void;
};

function RevokePanel(props: PanelProps) {
  const me = useMe();
  return me.key_kind === "wallet" ? <WalletRevokePanel {...props} address={me.eth_address ?? ""} /> : <PasswordRevokePanel {...props} />;
}

function PasswordRevokePanel({ consent, recordLabel, onDone, onCancel }: PanelProps) {
  const who = granteeName(consent);
  const revoke = async (password: string) => {
    const updated = await call(
      api.POST("/api/consents/{consent_id}/revoke", {
        params: { path: { consent_id: consent.id } },
        body: { password },
      }),
    );
    onDone(updated);
  };

  return (
    <PasswordConfirmForm
      id={`revoke-password-${consent.id}`}
      aria-label={`Revoke ${who}'s access`}
      action="Sign and revoke"
      actionClassName="danger"
      missing="Enter your password to sign the revocation."
      confirm={revoke}
      onCancel={onCancel}
    >
      <h2>Revoke {who}'s access?</h2>
      <p className="plain-words">{revokeSentence(consent, recordLabel)}</p>
      <p className="hint">
        Your key signs a Revoke of scope <code>{consent.scope}</code>, purpose {consent.purpose}, for{" "}
        <code>{consent.grantee_address}</code>.
      </p>
    </PasswordConfirmForm>
  );
}

// A payload that went stale while the panel was open is prepared anew, to be signed again.
const STALE_PAYLOAD = new Set(["deadline_expired", "stale_version"]);

/** Wallet users: the server prepares the Revoke, the wallet signs it as it came, and it goes back signed. */
function WalletRevokePanel({ consent, recordLabel, onDone, onCancel, address }: PanelProps & { address: string }) {
  const prepared = useLoad(
    () =>
      call(
        api.POST("/api/consents/{consent_id}/revoke/typed-data", {
          params: { path: { consent_id: consent.id } },
        }),
      ),
    [consent.id],
  );
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const who = granteeName(consent);

  const submitSigned = async (signature: string) => {
    setBusy(true);
    setErrors({});
    try {
      const typed_data = prepared.data as unknown as Record<string, unknown>;
      const updated = await call(
        api.POST("/api/consents/{consent_id}/revoke", {
          params: { path: { consent_id: consent.id } },
          body: { typed_data, signature },
        }),
      );
      onDone(updated);
    } catch (error) {
      setErrors(formErrorsFrom(error, []));
      if (error instanceof ApiError && STALE_PAYLOAD.has(error.code)) prepared.reload();
      setBusy(false);
    }
  };

  return (
    <form className="panel" onSubmit={(event) => event.preventDefault()} noValidate aria-label={`Revoke ${who}'s access`}>
      <h2>Revoke {who}'s access?</h2>
      <p className="plain-words">{revokeSentence(consent, recordLabel)}</p>
      <p className="hint">
        Your wallet signs a Revoke of scope <code>{consent.scope}</code>, purpose {consent.purpose}, for{" "}
        <code>{consent.grantee_address}</code>.
      </p>
      <FormError errors={errors} />
      {prepared.error ? <FormError errors={formErrorsFrom(prepared.error, [])} /> : null}
      {prepared.data ? (
        <WalletSign
          payload={prepared.data as unknown as TypedPayload}
          address={address}
          label="Sign in wallet and revoke"
          disabled={busy}
          onSigned={submitSigned}
        />
      ) : prepared.loading ? (
        <Loading what="what your wallet will sign" />
      ) : null}
      <div className="actions">
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function followMessage(consent: Consent | undefined): string {
  if (!consent) return "";
  const who = granteeName(consent);
  if (consent.revocation_pending) return `Revoking ${who}'s access: waiting for the chain…`;
  if (consent.status === "revoked") return `${who}'s access is revoked (block ${consent.ended_block}).`;
  const problem = consentState(consent).problem;
  return problem ?? "";
}

export function Consents() {
  const loaded = useLoad(() => listConsents(), []);
  // Record scopes are named by what the record is, not by its id.
  const records = useLoad(() => listRecords({ limit: 500 }), []);
  const labels: RecordLabels = new Map((records.data?.records ?? []).map((r) => [r.id, recordLabel(r)]));
  const [revoking, setRevoking] = useState<string | null>(null);
  const [followed, setFollowed] = useState<string | null>(null);
  const consents = loaded.data ?? [];
  const inFlight = consents.some((consent) => consentState(consent).inFlight);
  useRefreshWhile(inFlight, loaded.refresh);

  return (
    <Page title="My consents" intro="Who may see your records, for what, and until when. Changes are signed by you and written on the chain.">
      <p>
        <Link className="button primary" to="/consents/new">
          Grant access
        </Link>
      </p>
      <p className="live" role="status" aria-live="polite">
        {followMessage(consents.find((c) => c.id === followed))}
      </p>
      <ConnectionWatch error={loaded.data ? loaded.error : null} />
      {loaded.error && !loaded.data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="consents" /> : null}
      {loaded.data && !consents.length ? <Empty>You have not granted anyone access yet.</Empty> : null}
      {consents.length ? (
        <table className="cards consents">
          <caption className="visually-hidden">My consents</caption>
          <thead>
            <tr>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Purpose</th>
              <th scope="col">Expires</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {consents.map((consent) => (
              <ConsentRow
                key={consent.id}
                consent={consent}
                recordLabel={labelOf(consent, labels)}
                revoking={revoking === consent.id}
                onRevoke={() => setRevoking(consent.id)}
                onCancel={() => setRevoking(null)}
                onRevoked={() => {
                  setRevoking(null);
                  setFollowed(consent.id);
                  void loaded.refresh();
                }}
              />
            ))}
          </tbody>
        </table>
      ) : null}
    </Page>
  );
}

function ConsentRow({
  consent,
  recordLabel,
  revoking,
  onRevoke,
  onCancel,
  onRevoked,
}: {
  consent: Consent;
  recordLabel: string | undefined;
  revoking: boolean;
  onRevoke: () => void;
  onCancel: () => void;
  onRevoked: () => void;
}) {
  const who = granteeName(consent);
  return (
    <>
      <tr data-consent={consent.id}>
        <td data-label="Who">
          {who}
          <span className="hint">
            {" "}
            {consent.grantee.kind === "hospital" ? "hospital" : consent.grantee.hospital ? `doctor, ${consent.grantee.hospital}` : "doctor"}
          </span>
        </td>
        <td data-label="What">{scopeInWords(consent.scope, recordLabel)}</td>
        <td data-label="Purpose">{purposeInWords(consent.purpose)}</td>
        <td data-label="Expires">{consent.expires_at ? formatDate(consent.expires_at) : "never"}</td>
        <td data-label="Status">
          <StatusBadge consent={consent} />
          <ChainFacts consent={consent} />
        </td>
        <td>
          {canRevoke(consent) && !revoking ? (
            <button type="button" className="danger" onClick={onRevoke} aria-label={`Revoke ${who}'s access to ${scopeInWords(consent.scope)}`}>
              Revoke
            </button>
          ) : null}
        </td>
      </tr>
      {revoking ? (
        <tr className="panel-row">
          <td colSpan={6}>
            <RevokePanel consent={consent} recordLabel={recordLabel} onDone={onRevoked} onCancel={onCancel} />
          </td>
        </tr>
      ) : null}
    </>
  );
}
