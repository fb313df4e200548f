import { describe, expect, it } from "vitest";
import { buildObservation, checkObservationForm, chooseMeasurement, observationFieldOf, OTHER, type ObservationForm } from "./observation";

const hemoglobin: ObservationForm = {
  measurement: "718-7",
  code: "",
  display: "",
  category: "laboratory",
  value: "13.2",
  unit: "g/dL",
  date: "2026-11-02",
};

describe("a doctor's observation", () => {
  it("becomes a FHIR Observation filed under its category, with a UCUM unit when it is the listed one", () => {
    expect(buildObservation(hemoglobin)).toEqual({
      resourceType: "Observation",
      status: "final",
      category: [
        {
          coding: [
            { system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "laboratory", display: "Laboratory" },
          ],
        },
      ],
      code: { coding: [{ system: "http://loinc.org", code: "718-7", display: "Hemoglobin" }], text: "Hemoglobin" },
      effectiveDateTime: "2026-11-02",
      valueQuantity: { value: 13.2, unit: "g/dL", system: "http://unitsofmeasure.org", code: "g/dL" },
    });
  });

  it("keeps a free code and a typed unit as words, and leaves out an empty day", () => {
    const other = { ...hemoglobin, measurement: OTHER, code: " 1234-5 ", display: "Ferritin", unit: "ng/mL", date: "" };
    const built = buildObservation(other);
    expect(built.code).toEqual({ coding: [{ system: "http://loinc.org", code: "1234-5", display: "Ferritin" }], text: "Ferritin" });
    expect(built.valueQuantity).toEqual({ value: 13.2, unit: "ng/mL" });
    expect(built).not.toHaveProperty("effectiveDateTime");
  });

  it("takes a listed measurement's category and unit when it is chosen", () => {
    expect(chooseMeasurement(hemoglobin, "8867-4")).toMatchObject({ measurement: "8867-4", category: "vital-signs", unit: "/min" });
    expect(chooseMeasurement(hemoglobin, OTHER)).toMatchObject({ measurement: OTHER, unit: "g/dL" });
  });

  it("wants a number for the value and a code and words for another measurement", () => {
    expect(checkObservationForm(hemoglobin)).toEqual({});
    expect(checkObservationForm({ ...hemoglobin, value: "1e999" })).toHaveProperty("value");
    expect(checkObservationForm({ ...hemoglobin, measurement: OTHER, value: "high" })).toEqual({
      code: "Enter the LOINC code of what was measured, such as 718-7.",
      display: "Say what was measured, in words.",
      value: "Enter the value as a number, such as 13.2.",
    });
  });

  it("finds the field an API error's FHIR path is about", () => {
    expect(observationFieldOf("Observation.valueQuantity.value", hemoglobin)).toBe("value");
    expect(observationFieldOf("Observation.valueQuantity.system", hemoglobin)).toBe("unit");
    expect(observationFieldOf("Observation.code.coding[0].code", hemoglobin)).toBe("measurement");
    expect(observationFieldOf("Observation.code.coding[0].code", { ...hemoglobin, measurement: OTHER })).toBe("code");
    expect(observationFieldOf("Observation.effectiveDateTime", hemoglobin)).toBe("date");
    expect(observationFieldOf("Observation.subject", hemoglobin)).toBeNull();
  });
});
