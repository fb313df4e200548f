import { describe, expect, it } from "vitest";
import { conditionFacts, readRecord, recordTitle } from "./fhir";

const hemoglobin = {
  resourceType: "Observation",
  status: "final",
  code: { coding: [{ system: "http://loinc.org", code: "718-7", display: "Hemoglobin" }] },
  effectiveDateTime: "2026-11-02T09:30:00Z",
  valueQuantity: { value: 13.2, unit: "g/dL", system: "http://unitsofmeasure.org", code: "g/dL" },
};

const bloodPressure = {
  resourceType: "Observation",
  code: { text: "Blood pressure" },
  component: [
    { code: { text: "Systolic" }, valueQuantity: { value: 120, code: "mm[Hg]" } },
    { code: { text: "Diastolic" }, valueQuantity: { value: 80, unit: "mmHg" } },
  ],
};

describe("readRecord", () => {
  it("makes an observation a row with its value and unit", () => {
    expect(readRecord(hemoglobin).observations).toEqual([
      { name: "Hemoglobin", value: "13.2", unit: "g/dL", date: "2026-11-02T09:30:00Z", status: "final" },
    ]);
  });

  it("makes each component a row, with the unit code when there is no unit text", () => {
    const rows = readRecord(bloodPressure).observations;
    expect(rows.map((r) => [r.name, r.value, r.unit])).toEqual([
      ["Blood pressure: Systolic", "120", "mm[Hg]"],
      ["Blood pressure: Diastolic", "80", "mmHg"],
    ]);
  });

  it("reads a condition's name, status and onset", () => {
    const facts = conditionFacts({
      resourceType: "Condition",
      clinicalStatus: { coding: [{ code: "active" }] },
      code: { text: "Hypertension" },
      onsetDateTime: "2020-05-01",
    });
    expect(facts).toMatchObject({ name: "Hypertension", clinicalStatus: "active", onset: "2020-05-01" });
  });

  it("reads every entry of a Bundle", () => {
    const bundle = {
      resourceType: "Bundle",
      type: "collection",
      entry: [{ resource: hemoglobin }, { resource: { resourceType: "Condition", code: { text: "Anaemia" } } }, { resource: { resourceType: "Patient" } }],
    };
    const readable = readRecord(bundle);
    expect(readable.observations).toHaveLength(1);
    expect(readable.conditions.map((c) => c.name)).toEqual(["Anaemia"]);
    expect(readable.other).toEqual(["Patient"]);
  });

  it("names a record by what it holds", () => {
    expect(recordTitle(hemoglobin)).toBe("Hemoglobin");
    expect(recordTitle({ resourceType: "Condition", code: { text: "Asthma" } })).toBe("Asthma");
    expect(recordTitle(null)).toBe("Record");
  });
});
