// Labelled form controls whose error (from the page's own check or from the API's `field`) sits
// next to them and is tied to them for screen readers (aria-invalid, aria-describedby).
import type { InputHTMLAttributes, ReactNode, SelectHTMLAttributes, TextareaHTMLAttributes } from "react";

type Common = { id: string; label: string; error?: string | undefined; hint?: ReactNode };

function describedBy(id: string, error?: string, hint?: ReactNode): string | undefined {
  const ids = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

function Extras({ id, error, hint }: Omit<Common, "label">) {
  return (
    <>
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </>
  );
}

export function TextField({ id, label, error, hint, ...input }: Common & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...input}
      />
      <Extras id={id} error={error} hint={hint} />
    </div>
  );
}

export function TextAreaField({ id, label, error, hint, ...area }: Common & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        name={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...area}
      />
      <Extras id={id} error={error} hint={hint} />
    </div>
  );
}

export function SelectField({
  id,
  label,
  error,
  hint,
  children,
  ...select
}: Common & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        name={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...select}
      >
        {children}
      </select>
      <Extras id={id} error={error} hint={hint} />
    </div>
  );
}

type Choice = { value: string; label: string; hint?: string };

export function RadioGroup({
  id,
  label,
  error,
  choices,
  value,
  onChange,
}: Common & { choices: Choice[]; value: string; onChange: (value: string) => void }) {
  return (
    <fieldset className="field" aria-describedby={error ? `${id}-error` : undefined}>
      <legend>{label}</legend>
      {choices.map((choice) => (
        <div className="radio" key={choice.value}>
          <input
            type="radio"
            id={`${id}-${choice.value}`}
            name={id}
            value={choice.value}
            checked={value === choice.value}
            onChange={() => onChange(choice.value)}
          />
          <label htmlFor={`${id}-${choice.value}`}>
            {choice.label}
            {choice.hint ? <span className="hint"> {choice.hint}</span> : null}
          </label>
        </div>
      ))}
      <Extras id={id} error={error} />
    </fieldset>
  );
}

/** The errors of a form: by field name (where the API's `field` points), and one for the form. */
export type FormErrors = Record<string, string>;
export const FORM = "__form__";

export function FormError({ errors }: { errors: FormErrors }) {
  const message = errors[FORM];
  if (!message) return null;
  return (
    <p className="notice notice-bad" role="alert">
      {message}
    </p>
  );
}
