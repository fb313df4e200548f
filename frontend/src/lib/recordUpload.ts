// Adding to my chart: the page's own check of what the user chose or pasted (JSON, one object with a
// resourceType) and where it goes. One resource, or a document Bundle (one record), goes to POST
// /api/records; any other Bundle (transaction, collection) is imported at POST /api/records/import,
// one record per entry. The FHIR rules themselves are the API's: it answers 400 with `field` set to the
// FHIR path of the first bad element, and the page shows that next to the JSON.
import { ApiError } from "../api/client";
import { FORM, type FormErrors } from "../components/Fields";

export const JSON_FIELD = "fhir";

export type Upload =
  | { kind: "record"; resource: Record<string, unknown>; resourceType: string }
  | { kind: "bundle"; bundle: Record<string, unknown>; bundleType: string };

export type Checked = { upload: Upload } | { problem: string };

/** Is the text one FHIR resource, and which call takes it? The problem, in words, if not. */
export function checkUpload(text: string): Checked {
  if (!text.trim()) return { problem: "Choose a .json file or paste the JSON of a FHIR resource." };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `This is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problem: "A FHIR resource is one JSON object ({ … }), not a list or a single value." };
  }
  const resource = value as Record<string, unknown>;
  const resourceType = resource.resourceType;
  if (typeof resourceType !== "string" || !resourceType) {
    return { problem: 'This JSON has no "resourceType", so it is not a FHIR resource (for example "Observation").' };
  }
  const bundleType = typeof resource.type === "string" ? resource.type : "";
  if (resourceType === "Bundle" && bundleType !== "document") return { upload: { kind: "bundle", bundle: resource, bundleType } };
  return { upload: { kind: "record", resource, resourceType } };
}

/**
 * Where an API error belongs: anything about the content (a FHIR path, `resource`, `bundle`, `file`) is
 * said next to the JSON, with the path the API named; the rest for the whole form.
 */
export function uploadErrors(error: unknown): FormErrors {
  if (error instanceof ApiError && error.field && error.field !== "patient") {
    const where = ["resource", "bundle", "file"].includes(error.field) ? "" : error.field;
    const text = where && !error.message.includes(where) ? `${error.message} (at ${where})` : error.message;
    return { [JSON_FIELD]: text };
  }
  if (error instanceof Error) return { [FORM]: error.message };
  return { [FORM]: "Something went wrong in the page." };
}
