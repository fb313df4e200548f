import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Me, ModelJob, Prediction, RecordMeta } from "../../api/types";
import { ALICE, RECORD } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";

const DOCTOR: Me = { id: 2, username: "bob", role: "doctor", eth_address: "0xB0B0000000000000000000000000000000000002", key_kind: "managed", hospital: null };
const PATIENT = ALICE.eth_address ?? "";
const JOB_ID = `0x${"4a".repeat(32)}`;
const ADDED: RecordMeta = { ...RECORD, id: "7d1c8f0e-0000-4000-8000-000000000002", created_by: "bob", created_at: "2026-11-30T09:00:00Z" };

const MODEL: ModelJob = {
  job: { id: JOB_ID, number: 3, name: "wdbc" },
  status: "done",
  version_count: 3,
  latest_round: 2,
  latest: { round: 2, cid: "QmModel", weights_hash: `0x${"cd".repeat(32)}`, metrics: {}, chain: { status: "confirmed", block: 123, tx: `0x${"ab".repeat(32)}` }, created_at: "2026-11-29T10:00:00Z" },
};

const PREDICTION: Prediction = {
  probability: 0.9312,
  label: "malignant",
  job: MODEL.job,
  round: 2,
  cid: "QmModel",
  weights_hash: `0x${"cd".repeat(32)}`,
  chain: { status: "confirmed", block: 123, tx: `0x${"ab".repeat(32)}` },
  records_used: 30,
};

/** The doctor's view of the chart: its records so far (a list the test may grow) and the models listed. */
function chartOf(records: RecordMeta[], models: ModelJob[] = []) {
  fakeServer
    .on("GET", "/api/me", { body: DOCTOR })
    .on("GET", "/api/records", () => ({ body: { count: records.length, next: null, previous: null, results: records } }))
    .on("GET", "/api/models", { body: { count: models.length, next: null, previous: null, results: models } });
  return openAt(`/patients/${PATIENT}`);
}

const posted = (path: string) => fakeServer.sent.filter((s) => s.method === "POST" && s.path === path);

describe("adding a record to a patient's chart", () => {
  it("sends an observation as FHIR for this patient and lists the new record", async () => {
    const records: RecordMeta[] = [];
    fakeServer.on("POST", "/api/records", () => {
      records.push(ADDED);
      return { status: 201, body: ADDED };
    });
    const { user } = chartOf(records);
    expect(await screen.findByText("No records.")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Value"), "13.2");
    await user.clear(screen.getByLabelText("Day measured"));
    await user.type(screen.getByLabelText("Day measured"), "2026-11-30");
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));

    expect(await screen.findByText(/^Added to the chart: Observation, laboratory results/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Open it" })).toHaveAttribute("href", `/records/${ADDED.id}`);
    const table = await screen.findByRole("table", { name: `Records of patient ${PATIENT}` });
    expect(within(table).getByText("bob")).toBeInTheDocument();
    expect(posted("/api/records")[0]?.body).toEqual({
      patient: PATIENT,
      resource: expect.objectContaining({
        resourceType: "Observation",
        status: "final",
        code: { coding: [{ system: "http://loinc.org", code: "718-7", display: "Hemoglobin" }], text: "Hemoglobin" },
        effectiveDateTime: "2026-11-30",
        valueQuantity: { value: 13.2, unit: "g/dL", system: "http://unitsofmeasure.org", code: "g/dL" },
      }),
    });
  });

  it("says in words that no treatment consent covers the category, and offers to ask for access", async () => {
    fakeServer.on("POST", "/api/records", {
      status: 403,
      body: apiError("no_consent", "no active consent lets you add these records (no_consent)"),
    });
    const { user } = chartOf([]);
    await user.selectOptions(await screen.findByLabelText("Measurement"), "Heart rate");
    expect(screen.getByLabelText("Unit")).toHaveValue("/min");
    await user.type(screen.getByLabelText("Value"), "72");
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));
    expect(await screen.findByTestId("add-refused")).toHaveTextContent(
      "Not added. No active treatment consent of this patient lets you add vital signs.",
    );
    expect(screen.getByRole("link", { name: "Ask the patient for access" })).toHaveAttribute(
      "href",
      `/requests?patient=${encodeURIComponent(PATIENT)}`,
    );
  });

  it("puts the page's own errors and the API's FHIR errors next to the field they are about", async () => {
    fakeServer.on("POST", "/api/records", {
      status: 400,
      body: apiError("invalid_fhir", "invalid FHIR at Observation.valueQuantity.value: must be a number", "Observation.valueQuantity.value"),
    });
    const { user } = chartOf([]);
    await user.selectOptions(await screen.findByLabelText("Measurement"), "Another LOINC code…");
    await user.type(screen.getByLabelText("Value"), "lots");
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));
    expect(screen.getByLabelText("LOINC code")).toHaveAccessibleDescription("Enter the LOINC code of what was measured, such as 718-7.");
    expect(screen.getByLabelText("What was measured")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Value")).toHaveAccessibleDescription("Enter the value as a number, such as 13.2.");
    expect(posted("/api/records")).toHaveLength(0);

    await user.type(screen.getByLabelText("LOINC code"), "2276-4");
    await user.type(screen.getByLabelText("What was measured"), "Ferritin");
    await user.clear(screen.getByLabelText("Value"));
    await user.type(screen.getByLabelText("Value"), "12");
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));
    expect(await screen.findByText("invalid FHIR at Observation.valueQuantity.value: must be a number")).toBeInTheDocument();
    expect(screen.getByLabelText("Value")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("LOINC code")).not.toHaveAttribute("aria-invalid");
  });

  it("takes pasted FHIR JSON, and says next to it what is wrong with it", async () => {
    fakeServer.on("POST", "/api/records", {
      status: 400,
      body: apiError("invalid_fhir", "invalid FHIR at Condition.subject: is required", "Condition.subject"),
    });
    const { user } = chartOf([]);
    await user.click(await screen.findByRole("radio", { name: /FHIR JSON/ }));
    const json = screen.getByLabelText("FHIR JSON");
    await user.type(json, "not json");
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));
    expect(json).toHaveAttribute("aria-invalid", "true");
    expect(json).toHaveAccessibleDescription(/This is not valid JSON/);

    await user.clear(json);
    await user.click(json);
    await user.paste('{"resourceType": "Condition", "code": {"text": "Asthma"}}');
    await user.click(screen.getByRole("button", { name: "Add to the chart" }));
    expect(await screen.findByText("invalid FHIR at Condition.subject: is required")).toBeInTheDocument();
    expect(json).toHaveAccessibleDescription(/invalid FHIR at Condition.subject/);
    expect(posted("/api/records")[0]?.body).toEqual({ patient: PATIENT, resource: { resourceType: "Condition", code: { text: "Asthma" } } });
  });
});

describe("asking a model about the patient", () => {
  it("runs the chosen model and says its answer, its version and chain reference, and that it is logged", async () => {
    fakeServer.on("POST", `/api/models/${JOB_ID}/predict`, { body: PREDICTION });
    const { user } = chartOf([], [MODEL]);
    expect(await screen.findByRole("option", { name: "wdbc (job 3), round 2" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Predict" }));

    const answer = await screen.findByTestId("prediction");
    expect(answer).toHaveTextContent("Malignant. The model puts the probability of malignant at 93.1%.");
    expect(answer).toHaveTextContent("wdbc (job 3)");
    expect(answer).toHaveTextContent("round 2");
    expect(answer).toHaveTextContent("published in block 123");
    expect(within(answer).getByLabelText(`transaction 0x${"ab".repeat(32)}`)).toBeInTheDocument();
    expect(answer).toHaveTextContent("is written in the patient's access log");
    expect(posted(`/api/models/${JOB_ID}/predict`)[0]?.body).toEqual({ patient: PATIENT });
  });

  it("asks for the job by number when none is listed, and says refusals in words", async () => {
    const { user } = chartOf([]);
    const job = await screen.findByLabelText("Training job");
    await user.click(screen.getByRole("button", { name: "Predict" }));
    expect(job).toHaveAccessibleDescription(/Enter the training job's number/);

    fakeServer.on("POST", "/api/models/3/predict", { status: 404, body: apiError("no_model_version", "Job 0x… has no model version yet.") });
    await user.type(job, "3");
    await user.click(screen.getByRole("button", { name: "Predict" }));
    expect(await screen.findByText("This training job has no model version yet: no round of training has finished.")).toBeInTheDocument();
    expect(job).toHaveAttribute("aria-invalid", "true");

    fakeServer.on("POST", "/api/models/3/predict", { status: 403, body: apiError("revoked", "Consent revoked.") });
    await user.click(screen.getByRole("button", { name: "Predict" }));
    expect(await screen.findByTestId("predict-refused")).toHaveTextContent(
      "No prediction. The patient revoked the treatment consent that let you have a model read their laboratory results.",
    );
    expect(job).not.toHaveAttribute("aria-invalid");
    expect(screen.queryByTestId("prediction")).not.toBeInTheDocument();
  });
});
