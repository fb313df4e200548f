import { act, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { FORM } from "./Fields";
import { PasswordConfirmForm, type PasswordConfirmFormProps } from "./PasswordConfirmForm";

function deferred() {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

const WRONG = new ApiError(403, { error: "bad_password", detail: "The password is wrong.", field: "password" });

function open(props: Partial<PasswordConfirmFormProps> = {}) {
  const user = userEvent.setup();
  const confirm = vi.fn<(password: string) => Promise<unknown>>(props.confirm ?? (() => Promise.resolve()));
  const onCancel = vi.fn();
  render(
    <PasswordConfirmForm
      id="revoke-password-c1"
      aria-label="Revoke Dr Bob's access"
      action="Sign and revoke"
      actionClassName="danger"
      missing="Enter your password to sign the revocation."
      onCancel={onCancel}
      {...props}
      confirm={confirm}
    >
      <p>Dr Bob will no longer see your chart.</p>
    </PasswordConfirmForm>,
  );
  const form = screen.getByRole("form", { name: props["aria-label"] ?? "Revoke Dr Bob's access" });
  return { user, confirm, onCancel, form, field: within(form).getByLabelText(props.label ?? "Your password, to sign") };
}

describe("PasswordConfirmForm", () => {
  it("is a labelled form whose password field has focus, with the caller's words above it", () => {
    const { form, field } = open();
    expect(form).toHaveTextContent("Dr Bob will no longer see your chart.");
    expect(field).toHaveAttribute("id", "revoke-password-c1");
    expect(field).toHaveAttribute("type", "password");
    expect(field).toHaveAttribute("autocomplete", "current-password");
    expect(field).toHaveFocus();
    expect(within(form).getByRole("button", { name: "Sign and revoke" })).toHaveClass("danger");
  });

  it("says the missing password next to the field and sends nothing", async () => {
    const { user, confirm, form, field } = open();
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    expect(within(form).getByText("Enter your password to sign the revocation.")).toHaveAttribute("id", "revoke-password-c1-error");
    expect(field).toHaveAttribute("aria-invalid", "true");
    expect(field).toHaveAttribute("aria-describedby", "revoke-password-c1-error");
    expect(confirm).not.toHaveBeenCalled();
  });

  it("sends the password, is pending until the caller moves on, and stays so after success", async () => {
    const sent = deferred();
    const { user, confirm, form, field } = open({ confirm: () => sent.promise });
    await user.type(field, "pw");
    await user.keyboard("{Enter}");
    expect(confirm).toHaveBeenCalledWith("pw");
    expect(within(form).getByRole("button", { name: "Signing…" })).toBeDisabled();
    expect(within(form).getByRole("button", { name: "Cancel" })).toBeDisabled();
    await act(async () => {
      sent.resolve();
      await sent.promise;
    });
    // The caller closes the form on success: until then it neither re-enables nor forgets the password.
    expect(within(form).getByRole("button", { name: "Signing…" })).toBeDisabled();
    expect(field).toHaveValue("pw");
  });

  it("says a refused password next to the field, keeps what was typed and is ready again", async () => {
    const { user, confirm, form, field } = open({ confirm: () => Promise.reject(WRONG) });
    await user.type(field, "nope");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    expect(await within(form).findByText("The password is wrong.")).toHaveAttribute("id", "revoke-password-c1-error");
    expect(field).toHaveAttribute("aria-invalid", "true");
    expect(field).toHaveValue("nope");
    expect(within(form).getByRole("button", { name: "Sign and revoke" })).toBeEnabled();
    await user.type(field, "!");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    expect(confirm).toHaveBeenLastCalledWith("nope!");
  });

  it("says any other refusal for the whole form, above the field", async () => {
    const stale = new ApiError(409, { error: "change_pending", detail: "A change is still waiting for the chain.", field: null });
    const { user, form, field } = open({ confirm: () => Promise.reject(stale) });
    await user.type(field, "pw");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    const alert = await within(form).findByRole("alert");
    expect(alert).toHaveTextContent("A change is still waiting for the chain.");
    expect(alert.compareDocumentPosition(field) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    expect(field).not.toHaveAttribute("aria-invalid");
  });

  it("lets the caller say where a refusal goes, and places the form's error below the field when asked", async () => {
    const refused = vi.fn(() => ({ [FORM]: "Back to the choices." }));
    const { user, form, field } = open({ confirm: () => Promise.reject(WRONG), refused, formErrorBelow: true });
    await user.type(field, "pw");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    const alert = await within(form).findByRole("alert");
    expect(refused).toHaveBeenCalledWith(WRONG);
    expect(alert).toHaveTextContent("Back to the choices.");
    expect(alert.compareDocumentPosition(field) & Node.DOCUMENT_POSITION_PRECEDING).toBeTruthy();
  });

  it("cancels with the caller's own words for the second button", async () => {
    const { user, onCancel, form } = open({ cancelLabel: "Change" });
    await user.click(within(form).getByRole("button", { name: "Change" }));
    expect(onCancel).toHaveBeenCalledOnce();
  });

  it("when reusable, forgets the last error while sending, then empties the password and is ready again", async () => {
    const sent = deferred();
    let tries = 0;
    const { user, form, field } = open({
      reusable: true,
      autoFocus: false,
      confirm: () => (++tries === 1 ? Promise.reject(WRONG) : sent.promise),
    });
    expect(field).not.toHaveFocus();
    await user.type(field, "wrong");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    await within(form).findByText("The password is wrong.");
    await user.click(within(form).getByRole("button", { name: "Sign and revoke" }));
    expect(within(form).queryByText("The password is wrong.")).toBeNull();
    expect(within(form).getByRole("button", { name: "Signing…" })).toBeDisabled();
    sent.resolve();
    expect(await within(form).findByRole("button", { name: "Sign and revoke" })).toBeEnabled();
    expect(field).toHaveValue("");
  });

  it("keeps the password with the caller when it is given, so a step back and forth keeps it", async () => {
    const confirm = vi.fn(() => Promise.resolve());
    function Steps() {
      const [password, setPassword] = useState("");
      const [shown, setShown] = useState(true);
      return shown ? (
        <PasswordConfirmForm
          id="password"
          aria-label="Sign"
          action="Sign and grant"
          missing="Enter your password to sign the grant."
          confirm={confirm}
          onCancel={() => setShown(false)}
          cancelLabel="Change"
          password={password}
          onPasswordChange={setPassword}
        />
      ) : (
        <button type="button" onClick={() => setShown(true)}>
          Review
        </button>
      );
    }
    const user = userEvent.setup();
    render(<Steps />);
    await user.type(screen.getByLabelText("Your password, to sign"), "pw");
    await user.click(screen.getByRole("button", { name: "Change" }));
    await user.click(screen.getByRole("button", { name: "Review" }));
    expect(screen.getByLabelText("Your password, to sign")).toHaveValue("pw");
    await user.click(screen.getByRole("button", { name: "Sign and grant" }));
    expect(confirm).toHaveBeenCalledWith("pw");
  });
});
