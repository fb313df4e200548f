import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { checkUpload } from "../../lib/recordUpload";
import { ALICE, RECORD } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";

const OBSERVATION = { resourceType: "Observation", status: "final", code: { text: "Glucose" } };

function signedInPatient() {
  fakeServer.on("GET", "/api/me", { body: ALICE });
}

describe("the page's own check of an upload", () => {
  it("sends one resource and a document Bundle as a record, any other Bundle to import", () => {
    expect(checkUpload(JSON.stringify(OBSERVATION))).toMatchObject({ upload: { kind: "record", resourceType: "Observation" } });
    expect(checkUpload('{"resourceType":"Bundle","type":"document"}')).toMatchObject({ upload: { kind: "record" } });
    expect(checkUpload('{"resourceType":"Bundle","type":"transaction"}')).toMatchObject({ upload: { kind: "bundle", bundleType: "transaction" } });
  });

  it("refuses what is not one JSON object with a resourceType", () => {
    expect(checkUpload("  ")).toEqual({ problem: "Choose a .json file or paste the JSON of a FHIR resource." });
    expect(checkUpload("{nope")).toMatchObject({ problem: expect.stringMatching(/^This is not valid JSON/) });
    expect(checkUpload("[1, 2]")).toMatchObject({ problem: expect.stringMatching(/one JSON object/) });
    expect(checkUpload('{"status": "final"}')).toMatchObject({ problem: expect.stringMatching(/no "resourceType"/) });
  });
});

describe("adding a record", () => {
  it("is linked from my records", async () => {
    signedInPatient();
    fakeServer.on("GET", "/api/records", { body: { count: 0, next: null, previous: null, results: [] } });
    const { user } = openAt("/records");
    await user.click(await screen.findByRole("link", { name: "Add a record" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Add a record" })).toBeInTheDocument();
  });

  it("stores a pasted resource and says what was stored, with a link to it", async () => {
    signedInPatient();
    fakeServer.on("POST", "/api/records", { status: 201, body: RECORD });
    const { user } = openAt("/records/new");
    await user.click(await screen.findByLabelText("FHIR JSON"));
    await user.paste(JSON.stringify(OBSERVATION));
    await user.click(screen.getByRole("button", { name: "Add to my chart" }));

    expect(await screen.findByRole("heading", { level: 1, name: "Record added" })).toBeInTheDocument();
    expect(fakeServer.sent.find((r) => r.method === "POST")).toMatchObject({ path: "/api/records", body: { resource: OBSERVATION } });
    expect(screen.getByText(RECORD.id)).toBeInTheDocument();
    expect(screen.getByText("Laboratory results")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Open the record" })).toHaveAttribute("href", `/records/${RECORD.id}`);
    expect(screen.getByRole("link", { name: "Back to my records" })).toHaveAttribute("href", "/records");
  });

  it("imports a chosen Bundle file and lists what was stored and what was left out", async () => {
    signedInPatient();
    const bundle = {
      resourceType: "Bundle",
      type: "collection",
      entry: [{ resource: { resourceType: "Patient" } }, { resource: OBSERVATION }, { resource: OBSERVATION }],
    };
    const second = { ...RECORD, id: "7d1c8f0e-0000-4000-8000-000000000002" };
    fakeServer.on("POST", "/api/records/import", {
      status: 201,
      body: { created: 2, records: [RECORD, second], skipped: [{ index: 0, resourceType: "Patient", reason: "not a record" }] },
    });
    const { user } = openAt("/records/new");
    const file = new File([JSON.stringify(bundle)], "bundle.json", { type: "application/json" });
    await user.upload(await screen.findByLabelText("Choose a .json file"), file);
    expect(await screen.findByText("Loaded from bundle.json: check it here before adding.")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Add to my chart" }));

    expect(await screen.findByRole("heading", { level: 1, name: "Records added" })).toBeInTheDocument();
    expect(fakeServer.sent.find((r) => r.method === "POST")).toMatchObject({ path: "/api/records/import", body: { bundle } });
    expect(screen.getByRole("status")).toHaveTextContent("2 records were sealed and stored in your chart.");
    expect(screen.getAllByRole("link", { name: "Observation, laboratory results" })).toHaveLength(2);
    expect(screen.getByText("Entry 0 (Patient): not a record")).toBeInTheDocument();
  });

  it("says next to the JSON that it is not JSON, without asking the server", async () => {
    signedInPatient();
    const { user } = openAt("/records/new");
    await user.click(await screen.findByLabelText("FHIR JSON"));
    await user.paste('{"status": "final"}');
    await user.click(screen.getByRole("button", { name: "Add to my chart" }));
    const field = screen.getByLabelText("FHIR JSON");
    expect(field).toHaveAttribute("aria-invalid", "true");
    expect(field).toHaveAccessibleDescription(expect.stringMatching(/no "resourceType"/));
    expect(fakeServer.sent.some((r) => r.method === "POST")).toBe(false);
  });

  it("shows the API's FHIR error next to the JSON, with the path it names", async () => {
    signedInPatient();
    fakeServer.on("POST", "/api/records", {
      status: 400,
      body: apiError("invalid_fhir", "The status must be one of registered, preliminary, final.", "Observation.status"),
    });
    const { user } = openAt("/records/new");
    await user.click(await screen.findByLabelText("FHIR JSON"));
    await user.paste(JSON.stringify({ ...OBSERVATION, status: "done" }));
    await user.click(screen.getByRole("button", { name: "Add to my chart" }));
    const message = "The status must be one of registered, preliminary, final. (at Observation.status)";
    expect(await screen.findByText(message)).toBeInTheDocument();
    expect(screen.getByLabelText("FHIR JSON")).toHaveAccessibleDescription(expect.stringContaining(message));
    expect(screen.getByRole("heading", { level: 1, name: "Add a record" })).toBeInTheDocument();
  });

  it("says a refusal that names no field for the whole form", async () => {
    signedInPatient();
    fakeServer.on("POST", "/api/records", { status: 503, body: apiError("storage_full", "The record store is full.") });
    const { user } = openAt("/records/new");
    await user.click(await screen.findByLabelText("FHIR JSON"));
    await user.paste(JSON.stringify(OBSERVATION));
    await user.click(screen.getByRole("button", { name: "Add to my chart" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The record store is full.");
  });
});
