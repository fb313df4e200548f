import { useState } from "react";
import { Page } from "../components/Page";
import { useMe } from "../session";

const ROLE_WORDS: Record<string, string> = {
  patient: "Patient",
  doctor: "Doctor",
  hospital_admin: "Hospital admin",
  consortium_admin: "Consortium admin",
};

function CopyButton({ value }: { value: string }) {
  const [copied, setCopied] = useState(false);
  if (!navigator.clipboard) return null;
  return (
    <button
      type="button"
      className="small"
      onClick={() => navigator.clipboard.writeText(value).then(() => setCopied(true), () => setCopied(false))}
    >
      {copied ? "Copied" : "Copy address"}
    </button>
  );
}

export function Profile() {
  const me = useMe();
  return (
    <Page title="Profile">
      <dl className="facts">
        <dt>Username</dt>
        <dd>{me.username}</dd>
        <dt>Role</dt>
        <dd>{ROLE_WORDS[me.role] ?? me.role}</dd>
        {me.hospital ? (
          <>
            <dt>Hospital</dt>
            <dd>{me.hospital.name}</dd>
          </>
        ) : null}
        <dt>Ethereum address</dt>
        <dd>
          {me.eth_address ? (
            <>
              <code className="address" data-testid="eth-address">
                {me.eth_address}
              </code>{" "}
              <CopyButton value={me.eth_address} />
            </>
          ) : (
            "none yet"
          )}
        </dd>
        <dt>Signing key</dt>
        <dd>
          {me.key_kind === "managed"
            ? "Kept for you by HealthHash, sealed; it signs only after you confirm with your password."
            : "Your own wallet: you sign each change in it."}
        </dd>
      </dl>
    </Page>
  );
}
