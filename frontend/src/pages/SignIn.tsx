import { useState, type FormEvent } from "react";
import { FormError, TextField, type FormErrors } from "../components/Fields";
import { Page } from "../components/Page";
import { WalletSignIn } from "../components/WalletSignIn";
import { formErrorsFrom } from "../lib/errors";
import { useLocation } from "../router";
import { useSession } from "../session";

export function SignIn() {
  const { signIn } = useSession();
  const { query } = useLocation();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const expired = query.get("expired") === "1";

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const missing: FormErrors = {};
    if (!username.trim()) missing.username = "Enter your username.";
    if (!password) missing.password = "Enter your password.";
    setErrors(missing);
    if (Object.keys(missing).length) return;
    setBusy(true);
    try {
      // The frame sends a signed-in user on, to `next` or their home.
      await signIn(username.trim(), password);
    } catch (error) {
      setErrors(formErrorsFrom(error, ["username", "password"]));
      setBusy(false);
    }
  };

  return (
    <Page title="Sign in" focusHeading={false}>
      {expired ? (
        <p className="notice" role="status">
          Your session has ended. Sign in again to go back where you were.
        </p>
      ) : null}
      <form className="form narrow" onSubmit={submit} noValidate>
        <FormError errors={errors} />
        <TextField
          id="username"
          label="Username"
          autoComplete="username"
          autoFocus
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          error={errors.username}
        />
        <TextField
          id="password"
          label="Password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.password}
        />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <WalletSignIn />
    </Page>
  );
}
