import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Me } from "../api/types";
import { ALICE, RECORD } from "../test/fixtures";
import { openAt } from "../test/render";
import { apiError, fakeServer } from "../test/server";

const DOCTOR: Me = { ...ALICE, id: 2, username: "bob", role: "doctor" };

describe("one record", () => {
  it("renders an observation as a table with its unit", async () => {
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", `/api/records/${RECORD.id}`, {
      body: {
        record: RECORD,
        resource: {
          resourceType: "Observation",
          code: { coding: [{ display: "Hemoglobin" }] },
          valueQuantity: { value: 13.2, unit: "g/dL" },
          effectiveDateTime: "2026-11-02T09:00:00Z",
        },
        access: { reason: "owner", purpose: "TREATMENT", legal_basis: "owner" },
      },
    });
    openAt(`/records/${RECORD.id}`);
    await screen.findByRole("heading", { name: "Hemoglobin", level: 1 });
    const row = screen.getByRole("row", { name: /Hemoglobin/ });
    expect(row).toHaveTextContent("13.2");
    expect(row).toHaveTextContent("g/dL");
    expect(screen.getByRole("link", { name: "Share this record" })).toHaveAttribute(
      "href",
      `/consents/new?scope=${encodeURIComponent(`record:${RECORD.id}`)}`,
    );
  });

  it("tells a doctor in words that the patient revoked access", async () => {
    fakeServer.on("GET", "/api/me", { body: DOCTOR }).on("GET", `/api/records/${RECORD.id}`, {
      status: 403,
      body: apiError("revoked", "Consent revoked."),
    });
    openAt(`/records/${RECORD.id}`);
    expect(await screen.findByTestId("refused")).toHaveTextContent(
      "Access refused. The patient revoked the consent that let you open this record.",
    );
  });
});
