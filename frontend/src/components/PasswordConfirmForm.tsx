// The "confirm with your password" form that every signing screen shares: the caller's words on what
// is about to be signed, the password that unlocks the user's managed key, and one button that sends it.
// A refusal from the API lands next to the field (its `field` is password) or above it for the form.
import { useState, type FormEvent, type ReactNode } from "react";
import { formErrorsFrom } from "../lib/errors";
import { FormError, TextField, type FormErrors } from "./Fields";

export type PasswordConfirmFormProps = {
  /** The password field's id, unique on the page. */
  id: string;
  /** The submit button's words ("Sign and revoke"); it says "Signing…" while the password is sent. */
  action: string;
  /** Said next to the field when it is submitted empty ("Enter your password to sign the revocation."). */
  missing: string;
  /** Sends the password; resolves once done (the caller moves on), throws the API's refusal. */
  confirm: (password: string) => Promise<unknown>;
  /** Where a refusal is said; by default next to the password when the API names it, else for the form. */
  refused?: (error: unknown) => FormErrors;
  /** What is about to be signed, above the field. */
  children?: ReactNode;
  label?: string;
  hint?: ReactNode;
  autoFocus?: boolean;
  /** The submit button's class: "danger" for what takes something away. */
  actionClassName?: string;
  /** A second button (Cancel, Change), disabled while the password is sent. */
  onCancel?: () => void;
  cancelLabel?: string;
  className?: string;
  "aria-label"?: string;
  /** The form-wide error below the field rather than above it. */
  formErrorBelow?: boolean;
  /** A form that stays on screen once done: it forgets the last error when sending, and empties the
   * password and is ready again after success. Otherwise it stays "Signing…" for the caller to close. */
  reusable?: boolean;
  /** The password, when the caller keeps it across steps (a "Change" and back keeps what was typed). */
  password?: string;
  onPasswordChange?: (password: string) => void;
};

const byDefault = (error: unknown): FormErrors => formErrorsFrom(error, ["password"]);

export function PasswordConfirmForm({
  id,
  action,
  missing,
  confirm,
  refused = byDefault,
  children,
  label = "Your password, to sign",
  hint,
  autoFocus = true,
  actionClassName = "primary",
  onCancel,
  cancelLabel = "Cancel",
  className = "panel",
  "aria-label": ariaLabel,
  formErrorBelow = false,
  reusable = false,
  password: keptPassword,
  onPasswordChange,
}: PasswordConfirmFormProps) {
  const [ownPassword, setOwnPassword] = useState("");
  const password = keptPassword ?? ownPassword;
  const setPassword = onPasswordChange ?? setOwnPassword;
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!password) {
      setErrors({ password: missing });
      return;
    }
    if (reusable) setErrors({});
    setBusy(true);
    try {
      await confirm(password);
      if (reusable) {
        setPassword("");
        setBusy(false);
      }
    } catch (error) {
      setErrors(refused(error));
      setBusy(false);
    }
  };

  const formError = <FormError errors={errors} />;
  return (
    <form className={className} onSubmit={(event) => void submit(event)} noValidate aria-label={ariaLabel}>
      {children}
      {formErrorBelow ? null : formError}
      <TextField
        id={id}
        label={label}
        type="password"
        autoComplete="current-password"
        autoFocus={autoFocus}
        value={password}
        onChange={(event) => setPassword(event.target.value)}
        error={errors.password}
        hint={hint}
      />
      {formErrorBelow ? formError : null}
      <div className="actions">
        <button type="submit" className={actionClassName} disabled={busy}>
          {busy ? "Signing…" : action}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel} disabled={busy}>
            {cancelLabel}
          </button>
        ) : null}
      </div>
    </form>
  );
}
