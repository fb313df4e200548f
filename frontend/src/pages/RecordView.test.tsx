import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Me } from "../api/types";
import { ALICE, RECORD } from "../test/fixtures";
import { openAt } from "../test/render";
import { apiError, fakeServer } from "../test/server";

const DOCTOR: Me = { ...ALICE, id: 2, username: "bob", role: "doctor" };

describe("one record", () => {
  afterEach(() => vi.restoreAllMocks());

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

  it("downloads a file record through the same door and says why when it may not", async () => {
    const file = { ...RECORD, content_type: "application/pdf", resource_type: "DocumentReference" };
    let refuse = false;
    fakeServer
      .on("GET", "/api/me", { body: ALICE })
      .on("GET", `/api/records/${RECORD.id}`, {
        body: {
          record: file,
          resource: { resourceType: "DocumentReference", description: "Discharge letter", content: [{ attachment: { contentType: "application/pdf" } }] },
          access: { reason: "owner", purpose: "TREATMENT", legal_basis: "owner" },
        },
      })
      .on("GET", `/api/records/${RECORD.id}/content`, () =>
        refuse ? { status: 403, body: apiError("revoked", "Consent revoked.") } : { body: "%PDF-1.7 letter" },
      );
    const saved: Blob[] = [];
    vi.spyOn(URL, "createObjectURL").mockImplementation((blob) => {
      saved.push(blob as Blob);
      return "blob:record";
    });
    vi.spyOn(URL, "revokeObjectURL").mockImplementation(() => undefined);
    const clicked: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    });
    const { user } = openAt(`/records/${RECORD.id}`);
    const name = `record-${RECORD.id}.pdf`;
    await user.click(await screen.findByRole("button", { name: `Download ${name}` }));

    expect(await screen.findByText(`Saved as ${name}.`)).toBeInTheDocument();
    const asked = fakeServer.sent.find((r) => r.path === `/api/records/${RECORD.id}/content`);
    expect(asked?.query.get("format")).toBe("bin");
    expect(clicked).toEqual([name]);
    expect(saved[0]?.type).toBe("application/pdf");
    expect(await (saved[0] as Blob).text()).toContain("%PDF-1.7 letter");

    refuse = true;
    await user.click(screen.getByRole("button", { name: `Download ${name}` }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Consent revoked.");
  });

  it("offers no file download for a FHIR record", async () => {
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", `/api/records/${RECORD.id}`, {
      body: { record: RECORD, resource: { resourceType: "Observation" }, access: { reason: "owner", purpose: "TREATMENT", legal_basis: "owner" } },
    });
    openAt(`/records/${RECORD.id}`);
    await screen.findByRole("heading", { level: 1 });
    expect(screen.queryByRole("button", { name: /^Download/ })).not.toBeInTheDocument();
  });
});
