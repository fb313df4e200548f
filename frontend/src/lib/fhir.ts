// Reading FHIR R4 resources for people: observations become table rows (name, value, unit, date),
// conditions a few labelled facts. Unknown shapes fall back to their type; nothing here validates
// (the API validated the resource on the way in).
type Json = Record<string, unknown>;

export type ObservationRow = { name: string; value: string; unit: string; date: string; status: string };
export type ConditionFacts = {
  name: string;
  clinicalStatus: string;
  verification: string;
  onset: string;
  note: string;
};
export type DocumentFacts = { title: string; contentType: string; date: string };

export type ReadableRecord = {
  observations: ObservationRow[];
  conditions: ConditionFacts[];
  documents: DocumentFacts[];
  other: string[];
};

function asObject(value: unknown): Json | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function text(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}

/** A CodeableConcept's words: its text, else the first coding's display, else its code. */
export function conceptText(value: unknown): string {
  const concept = asObject(value);
  if (!concept) return "";
  if (text(concept.text)) return text(concept.text);
  for (const coding of asArray(concept.coding)) {
    const c = asObject(coding);
    if (c && text(c.display)) return text(c.display);
  }
  const first = asObject(asArray(concept.coding)[0]);
  return first ? text(first.code) : "";
}

function observedValue(holder: Json): { value: string; unit: string } {
  const quantity = asObject(holder.valueQuantity);
  if (quantity) {
    const comparator = text(quantity.comparator);
    return { value: `${comparator}${text(quantity.value)}`, unit: text(quantity.unit) || text(quantity.code) };
  }
  if (holder.valueString !== undefined) return { value: text(holder.valueString), unit: "" };
  if (holder.valueInteger !== undefined) return { value: text(holder.valueInteger), unit: "" };
  if (typeof holder.valueBoolean === "boolean") return { value: holder.valueBoolean ? "yes" : "no", unit: "" };
  if (holder.valueCodeableConcept !== undefined) return { value: conceptText(holder.valueCodeableConcept), unit: "" };
  if (holder.valueDateTime !== undefined) return { value: text(holder.valueDateTime), unit: "" };
  const absent = conceptText(holder.dataAbsentReason);
  return { value: absent ? `(${absent})` : "", unit: "" };
}

export function observationRows(resource: Json): ObservationRow[] {
  const name = conceptText(resource.code) || "Observation";
  const date = text(resource.effectiveDateTime) || text(asObject(resource.effectivePeriod)?.start) || text(resource.issued);
  const status = text(resource.status);
  const rows: ObservationRow[] = [];
  const own = observedValue(resource);
  if (own.value || asArray(resource.component).length === 0) rows.push({ name, ...own, date, status });
  for (const component of asArray(resource.component)) {
    const c = asObject(component);
    if (!c) continue;
    rows.push({ name: `${name}: ${conceptText(c.code) || "component"}`, ...observedValue(c), date, status });
  }
  return rows;
}

export function conditionFacts(resource: Json): ConditionFacts {
  const notes = asArray(resource.note)
    .map((n) => text(asObject(n)?.text))
    .filter(Boolean);
  return {
    name: conceptText(resource.code) || "Condition",
    clinicalStatus: conceptText(resource.clinicalStatus),
    verification: conceptText(resource.verificationStatus),
    onset: text(resource.onsetDateTime) || text(resource.recordedDate),
    note: notes.join(" "),
  };
}

function documentFacts(resource: Json): DocumentFacts {
  const attachment = asObject(asObject(asArray(resource.content)[0])?.attachment) ?? {};
  return {
    title: text(resource.description) || text(attachment.title) || conceptText(resource.type) || "Document",
    contentType: text(attachment.contentType),
    date: text(resource.date) || text(attachment.creation),
  };
}

/** Every readable part of a resource (a Bundle's entries included), grouped by kind. */
export function readRecord(resource: unknown): ReadableRecord {
  const out: ReadableRecord = { observations: [], conditions: [], documents: [], other: [] };
  const visit = (value: unknown): void => {
    const item = asObject(value);
    if (!item) return;
    switch (item.resourceType) {
      case "Observation":
        out.observations.push(...observationRows(item));
        break;
      case "Condition":
        out.conditions.push(conditionFacts(item));
        break;
      case "DocumentReference":
        out.documents.push(documentFacts(item));
        break;
      case "Bundle":
        asArray(item.entry).forEach((entry) => visit(asObject(entry)?.resource));
        break;
      default:
        out.other.push(text(item.resourceType) || "resource");
    }
  };
  visit(resource);
  return out;
}

/** A short name for a record: what its resource says it is. */
export function recordTitle(resource: unknown): string {
  const readable = readRecord(resource);
  const first = readable.observations[0]?.name ?? readable.conditions[0]?.name ?? readable.documents[0]?.title;
  return first ?? readable.other[0] ?? "Record";
}
