import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Me } from "../../api/types";
import { ALICE } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";
import { checkRequestForm, requestScope, type RequestForm } from "./RequestAccess";

const DOCTOR: Me = { id: 2, username: "bob", role: "doctor", eth_address: "0xB0B0000000000000000000000000000000000002", key_kind: "managed", hospital: null };
const PATIENT = ALICE.eth_address ?? "";

describe("request form rules", () => {
  const form: RequestForm = { patient: PATIENT, kind: "chart", category: "", record: "", purpose: "TREATMENT", expiry: "", reason: "x" };

  it("builds the scope the API knows and refuses what it would refuse", () => {
    expect(requestScope({ ...form, kind: "category", category: "laboratory" })).toBe("category:laboratory");
    expect(checkRequestForm(form, "2026-06-01")).toEqual({});
    expect(checkRequestForm({ ...form, patient: "alice", kind: "record", record: "nope", reason: " ", expiry: "2026-01-01" }, "2026-06-01")).toEqual({
      patient: "Enter the patient's Ethereum address: 0x and 40 hex digits.",
      record: "Enter the record's id (a UUID).",
      expiry: "The expiry must be today or later.",
      reason: "Say why you need access: the patient reads it.",
    });
  });
});

describe("requesting access, as a doctor", () => {
  it("sends the request and lists it as waiting; the API's error lands next to its field", async () => {
    let made = 0;
    const created = {
      id: "a1",
      doctor: { username: "bob", name: "Dr Bob", address: DOCTOR.eth_address },
      hospital: "general",
      patient_address: PATIENT,
      scope: "category:laboratory",
      purpose: "TREATMENT",
      expires_at: null,
      reason: "Check-up",
      status: "pending",
      created_at: "2026-11-02T10:00:00Z",
      consent: null,
    };
    fakeServer
      .on("GET", "/api/me", { body: DOCTOR })
      .on("GET", "/api/access-requests", () => ({ body: { count: made, results: made ? [created] : [] } }))
      .on("POST", "/api/access-requests", () => ({ status: 400, body: apiError("not_found", "No patient has this address.", "patient") }));
    const { user } = openAt(`/requests?patient=${PATIENT}`);
    expect(await screen.findByLabelText("Patient's Ethereum address")).toHaveValue(PATIENT);
    await user.click(screen.getByLabelText("One category of records"));
    await user.selectOptions(screen.getByLabelText("Category"), "laboratory");
    await user.type(screen.getByLabelText("Reason, for the patient"), "Check-up");
    await user.click(screen.getByRole("button", { name: "Send the request" }));
    expect(await screen.findByText("No patient has this address.")).toBeInTheDocument();
    expect(screen.getByLabelText("Patient's Ethereum address")).toHaveAttribute("aria-invalid", "true");

    fakeServer.on("POST", "/api/access-requests", () => {
      made = 1;
      return { status: 201, body: created };
    });
    await user.click(screen.getByRole("button", { name: "Send the request" }));
    expect(await screen.findByText(/^Your request was sent to patient 0x/)).toBeInTheDocument();
    expect(fakeServer.sent.filter((r) => r.method === "POST").at(-1)?.body).toEqual({
      patient: PATIENT,
      scope: "category:laboratory",
      purpose: "TREATMENT",
      expires_at: null,
      reason: "Check-up",
    });
    const table = await screen.findByRole("table", { name: "Requests I made" });
    expect(within(table).getByText("Waiting for the patient")).toBeInTheDocument();
  });
});
