import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { BreakGlass, Me } from "../../api/types";
import { ALICE } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";
import { checkBreakGlassForm } from "./BreakGlass";

const PATIENT = ALICE.eth_address ?? "";
const DOCTOR: Me = { id: 2, username: "bob", role: "doctor", eth_address: "0xB0B0000000000000000000000000000000000002", key_kind: "managed", hospital: null };

function glass(over: Partial<BreakGlass> = {}): BreakGlass {
  return {
    id: "5f0c0000-0000-4000-8000-000000000001",
    doctor: { username: "bob", name: "Dr Bob", address: DOCTOR.eth_address },
    hospital: "general",
    patient_address: PATIENT,
    reason: "Unconscious in the ER",
    started_at: "2026-11-30T10:00:00Z",
    expires_at: "2026-11-30T14:00:00Z",
    ended_at: null,
    live: true,
    review_status: "pending",
    reviewed_by: "",
    reviewed_at: null,
    review_note: "",
    ...over,
  };
}

describe("checkBreakGlassForm", () => {
  it("wants an address and a reason of at least 10 characters", () => {
    expect(checkBreakGlassForm({ patient: "0x12", reason: "short" })).toEqual({
      patient: "Enter the patient's Ethereum address (0x and 40 hex digits).",
      reason: "Say why this is an emergency (at least 10 characters).",
    });
    expect(checkBreakGlassForm({ patient: PATIENT, reason: "Unconscious in the ER" })).toEqual({});
  });
});

describe("break-glass page", () => {
  it("says the patient will see it, refuses an empty reason in the page, and shows the API's error by its field", async () => {
    let posted = 0;
    fakeServer
      .on("GET", "/api/me", { body: DOCTOR })
      .on("GET", "/api/break-glass", { body: { count: 0, results: [] } })
      .on("POST", "/api/break-glass", () => {
        posted += 1;
        return { status: 404, body: apiError("unknown_patient", "no patient with this address", "patient") };
      });
    const { user } = openAt(`/break-glass?patient=${PATIENT}`);
    expect(await screen.findByTestId("break-glass-warning")).toHaveTextContent("The patient will see this access");
    expect(screen.getByLabelText("Patient's Ethereum address")).toHaveValue(PATIENT);
    await user.click(screen.getByRole("button", { name: "Break the glass" }));
    expect(screen.getByText("Say why this is an emergency (at least 10 characters).")).toBeInTheDocument();
    expect(posted).toBe(0);
    await user.type(screen.getByLabelText("Reason for emergency access"), "Unconscious in the ER");
    await user.click(screen.getByRole("button", { name: "Break the glass" }));
    expect(await screen.findByText("no patient with this address")).toBeInTheDocument();
    expect(screen.getByLabelText("Patient's Ethereum address")).toHaveAttribute("aria-invalid", "true");
  });

  it("opens the emergency access and says until when", async () => {
    fakeServer
      .on("GET", "/api/me", { body: DOCTOR })
      .on("GET", "/api/break-glass", { body: { count: 0, results: [] } })
      .on("POST", "/api/break-glass", { status: 201, body: glass() });
    const { user } = openAt("/break-glass");
    await user.type(await screen.findByLabelText("Patient's Ethereum address"), PATIENT);
    await user.type(screen.getByLabelText("Reason for emergency access"), "Unconscious in the ER");
    await user.click(screen.getByRole("button", { name: "Break the glass" }));
    expect(await screen.findByText(/Emergency access is open until/)).toBeInTheDocument();
    expect(fakeServer.sent.find((s) => s.method === "POST")?.body).toEqual({ patient: PATIENT, reason: "Unconscious in the ER" });
  });
});
