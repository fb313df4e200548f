// An API error lands next to the field its `field` names, when the form has that field; otherwise it
// is said for the whole form. A lost connection is said in words too (the user submits again).
import { ApiError } from "../api/client";
import { FORM, type FormErrors } from "../components/Fields";

export function formErrorsFrom(error: unknown, fields: readonly string[]): FormErrors {
  if (error instanceof ApiError && error.field) {
    const name = error.field.split(/[.[]/)[0] ?? "";
    if (fields.includes(name)) return { [name]: error.message };
  }
  if (error instanceof Error) return { [FORM]: error.message };
  return { [FORM]: "Something went wrong in the page." };
}
