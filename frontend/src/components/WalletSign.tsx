// The wallet's "sign" step of a form: one button that asks the browser wallet to sign the exact payload
// the API prepared (eth_signTypedData_v4), then hands the signature to the page, which submits it. A
// cancelled prompt is said in words: nothing was signed, so nothing was sent and nothing is pending.
import { useId, useState } from "react";
import "./cards.css";
import type { TypedPayload } from "../lib/wallet";

type Props = {
  payload: TypedPayload;
  /** The signed-in user's address: the wallet must sign with this account. */
  address: string;
  label: string;
  /** Submits the signature; its own errors are the page's to show. */
  onSigned: (signature: string) => Promise<void>;
  disabled?: boolean;
};

export function WalletSign({ payload, address, label, onSigned, disabled = false }: Props) {
  const hintId = useId();
  const [waiting, setWaiting] = useState(false);
  const [problem, setProblem] = useState<{ rejected: boolean; text: string } | null>(null);

  const sign = async () => {
    setProblem(null);
    setWaiting(true);
    let signature: string;
    try {
      // Loaded on first use: pages of password users never fetch the wallet library.
      const wallet = await import("../lib/wallet");
      try {
        signature = await wallet.signTypedPayload(payload, address);
      } catch (error) {
        const rejected = error instanceof wallet.WalletError && error.problem === "rejected";
        setProblem({
          rejected,
          text: rejected
            ? "You cancelled the signature in your wallet. Nothing was signed, so nothing was sent and nothing is pending."
            : error instanceof Error
              ? error.message
              : "Your wallet could not sign.",
        });
        return;
      }
      await onSigned(signature);
    } finally {
      setWaiting(false);
    }
  };

  return (
    <div className="wallet-sign">
      {problem ? (
        <p className={`notice ${problem.rejected ? "" : "notice-bad"}`} role="alert" data-testid="wallet-problem">
          {problem.text}
        </p>
      ) : null}
      <p className="hint" id={hintId}>
        Your wallet shows the same terms to sign. HealthHash relays the signed message to the chain for you: it costs you
        nothing.
      </p>
      <button type="button" className="primary" onClick={() => void sign()} disabled={disabled || waiting} aria-describedby={hintId}>
        {waiting ? "Waiting for your wallet…" : label}
      </button>
    </div>
  );
}
