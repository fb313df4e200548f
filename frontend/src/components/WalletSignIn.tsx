// "Sign in with Ethereum": the wallet signs the site's EIP-4361 message and the server starts the
// session (an address it does not know becomes a new patient). A cancelled prompt is said in words.
import { useState } from "react";
import "./cards.css";
import { useSession } from "../session";

export function WalletSignIn() {
  const { retry } = useSession();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState("");

  const signIn = async () => {
    setProblem("");
    setBusy(true);
    try {
      // Loaded on first use: password users never fetch the wallet library.
      const [{ signInWithEthereum }, { WalletError }] = await Promise.all([import("../lib/siwe"), import("../lib/wallet")]);
      try {
        await signInWithEthereum();
      } catch (error) {
        setProblem(
          error instanceof WalletError && error.problem === "rejected"
            ? "You cancelled the sign-in in your wallet: nothing was signed and you are not signed in."
            : error instanceof Error
              ? error.message
              : "Signing in with your wallet did not work.",
        );
        setBusy(false);
        return;
      }
      retry(); // the session reads who signed in; the frame then goes on to `next` or the home page
    } catch (error) {
      setProblem(error instanceof Error ? error.message : "Signing in with your wallet did not work.");
      setBusy(false);
    }
  };

  return (
    <section className="wallet-sign-in" aria-labelledby="wallet-sign-in-title">
      <h2 id="wallet-sign-in-title">Or use your wallet</h2>
      <p className="hint" id="wallet-sign-in-hint">
        MetaMask or a compatible wallet signs a sign-in message: no transaction, no cost. A new address gets a new patient account.
      </p>
      {problem ? (
        <p className="notice notice-bad" role="alert">
          {problem}
        </p>
      ) : null}
      <button type="button" onClick={() => void signIn()} disabled={busy} aria-describedby="wallet-sign-in-hint">
        {busy ? "Waiting for your wallet…" : "Sign in with Ethereum"}
      </button>
    </section>
  );
}
