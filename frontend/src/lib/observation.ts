// A doctor's observation in a few fields (what was measured, its value and unit, the day), made into the
// FHIR R4 Observation the API stores. The category coding is what the API files the record under (and
// what a category consent covers). The FHIR rules are the API's: its 400 names the FHIR path of the
// first bad element, which `observationFieldOf` turns back into the field the doctor filled in.
import type { Category } from "../api/types";
import type { FormErrors } from "../components/Fields";

export const OTHER = "other";
const LOINC = "http://loinc.org";
const UCUM = "http://unitsofmeasure.org";
const OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";

export type ObservationCategory = Extract<Category, "laboratory" | "vital-signs">;
export const OBSERVATION_CATEGORIES: Record<ObservationCategory, string> = {
  laboratory: "Laboratory",
  "vital-signs": "Vital Signs",
};

export type Measurement = { code: string; display: string; unit: string; category: ObservationCategory };

/** Common measurements by LOINC code, with the UCUM unit they are usually given in. */
export const MEASUREMENTS: Measurement[] = [
  { code: "718-7", display: "Hemoglobin", unit: "g/dL", category: "laboratory" },
  { code: "2345-7", display: "Glucose", unit: "mg/dL", category: "laboratory" },
  { code: "4548-4", display: "Hemoglobin A1c", unit: "%", category: "laboratory" },
  { code: "2160-0", display: "Creatinine", unit: "mg/dL", category: "laboratory" },
  { code: "2093-3", display: "Cholesterol", unit: "mg/dL", category: "laboratory" },
  { code: "8867-4", display: "Heart rate", unit: "/min", category: "vital-signs" },
  { code: "8480-6", display: "Systolic blood pressure", unit: "mm[Hg]", category: "vital-signs" },
  { code: "8462-4", display: "Diastolic blood pressure", unit: "mm[Hg]", category: "vital-signs" },
  { code: "8310-5", display: "Body temperature", unit: "Cel", category: "vital-signs" },
  { code: "29463-7", display: "Body weight", unit: "kg", category: "vital-signs" },
];

export type ObservationForm = {
  measurement: string; // a LOINC code of MEASUREMENTS, or OTHER
  code: string;
  display: string;
  category: ObservationCategory;
  value: string;
  unit: string;
  date: string; // yyyy-mm-dd, or "" for none
};

export function measurementOf(code: string): Measurement | undefined {
  return MEASUREMENTS.find((m) => m.code === code);
}

/** The form with a listed measurement chosen: its category and usual unit come with it. */
export function chooseMeasurement(form: ObservationForm, measurement: string): ObservationForm {
  const known = measurementOf(measurement);
  if (!known) return { ...form, measurement: OTHER };
  return { ...form, measurement, category: known.category, unit: known.unit };
}

const NUMBER = /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/;

/** The page's own check, before anything is sent (what FHIR requires); the API validates it again. */
export function checkObservationForm(form: ObservationForm): FormErrors {
  const errors: FormErrors = {};
  if (form.measurement === OTHER) {
    if (!form.code.trim()) errors.code = "Enter the LOINC code of what was measured, such as 718-7.";
    if (!form.display.trim()) errors.display = "Say what was measured, in words.";
  }
  const value = form.value.trim();
  if (!NUMBER.test(value) || !Number.isFinite(Number(value))) errors.value = "Enter the value as a number, such as 13.2.";
  return errors;
}

/** The FHIR R4 Observation the form describes (after `checkObservationForm` found nothing). */
export function buildObservation(form: ObservationForm): Record<string, unknown> {
  const known = form.measurement === OTHER ? undefined : measurementOf(form.measurement);
  const code = known?.code ?? form.code.trim();
  const display = known?.display ?? form.display.trim();
  const unit = form.unit.trim();
  const listedUnit = known !== undefined && unit === known.unit;
  return {
    resourceType: "Observation",
    status: "final",
    category: [
      {
        coding: [{ system: OBSERVATION_CATEGORY, code: form.category, display: OBSERVATION_CATEGORIES[form.category] }],
      },
    ],
    code: { coding: [{ system: LOINC, code, display }], text: display },
    ...(form.date ? { effectiveDateTime: form.date } : {}),
    valueQuantity: {
      value: Number(form.value.trim()),
      // A unit the doctor typed is kept as words only: it is not known to be a UCUM code.
      ...(unit ? { unit } : {}),
      ...(listedUnit ? { system: UCUM, code: unit } : {}),
    },
  };
}

/** The form field a FHIR path of the API's error points at, or null when none of them holds it. */
export function observationFieldOf(path: string, form: ObservationForm): string | null {
  const element = path.replace(/^Observation\./, "");
  if (element.startsWith("code")) return form.measurement === OTHER ? "code" : "measurement";
  if (element.startsWith("category")) return "category";
  if (element === "valueQuantity.value") return "value";
  if (element.startsWith("valueQuantity.")) return "unit";
  if (element.startsWith("value")) return "value";
  if (element.startsWith("effective")) return "date";
  return null;
}
