import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { HospitalEntry, Me } from "../../api/types";
import { GENERAL } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";
import { checkHospitalForm } from "./Hospitals";
import { statusInWords } from "./directoryEntry";

const CADMIN: Me = { id: 4, username: "cadmin", role: "consortium_admin", eth_address: null, key_kind: "managed", hospital: null };

function entry(over: Partial<HospitalEntry> = {}): HospitalEntry {
  return { ...GENERAL, admin_username: "hadmin", status: "active", action: null, ...over };
}

describe("the consortium admin's hospitals", () => {
  it("says where a Directory entry stands, with the chain's reason when it failed", () => {
    const action = { id: 1, status: "pending", error_code: "", created_at: "2026-12-01T10:00:00Z" };
    expect(statusInWords({ status: "pending", action })).toEqual({ label: "Pending: queued for the chain", tone: "pending", inFlight: true });
    expect(statusInWords({ status: "pending", action: { ...action, status: "confirmed" } }).label).toBe(
      "Pending: mined, waiting for the Directory",
    );
    expect(statusInWords({ status: "failed", action: { ...action, status: "failed", error_code: "NotAuthorized" } })).toEqual({
      label: "Failed (NotAuthorized)",
      tone: "bad",
      inFlight: false,
    });
    expect(statusInWords({ status: "inactive", action: null }).label).toBe("Inactive");
  });

  it("checks the form in the page", () => {
    const form = { slug: "a b", name: " ", admin_username: "", admin_password: "", password: "" };
    expect(Object.keys(checkHospitalForm(form)).sort()).toEqual(["admin_username", "name", "password", "slug"]);
    expect(checkHospitalForm({ ...form, slug: "east", name: "East", admin_username: "eadmin", password: "pw" })).toEqual({});
  });

  it("registers a hospital with a new admin, shows the API's refusal by its field, and follows it to active", async () => {
    let east: HospitalEntry | null = null;
    let reads = 0;
    fakeServer
      .on("GET", "/api/me", { body: CADMIN })
      .on("GET", "/api/hospitals", () => ({ body: { count: east ? 2 : 1, results: east ? [GENERAL, east] : [GENERAL] } }))
      .on("GET", `/api/hospitals/${GENERAL.slug}`, { body: entry() })
      .on("GET", "/api/hospitals/east", () => {
        reads += 1;
        return { body: reads >= 2 ? { ...east, status: "active", active: true } : east };
      })
      .on("POST", "/api/hospitals", (_request, body) => {
        const sent = body as { slug: string };
        if (sent.slug === "general") return { status: 409, body: apiError("slug_taken", "A hospital already has this short name.", "slug") };
        east = entry({ slug: "east", name: "East Hospital", admin_username: "eadmin", active: false, status: "pending", action: null });
        return { status: 202, body: east };
      });
    const { user } = openAt("/");
    expect(await screen.findByRole("heading", { level: 1, name: "Hospitals" })).toBeInTheDocument();
    expect(within(await screen.findByRole("row", { name: /General Hospital/ })).getByText("Active")).toBeInTheDocument();

    await user.type(screen.getByLabelText("Name"), "East Hospital");
    await user.type(screen.getByLabelText("Short name"), "general");
    await user.type(screen.getByLabelText("Admin's username"), "eadmin");
    await user.type(screen.getByLabelText("Admin's password (for a new admin)"), "new-admin-pw");
    await user.type(screen.getByLabelText("Your password, to sign"), "cadmin-pw");
    await user.click(screen.getByRole("button", { name: "Sign and register" }));
    expect(await screen.findByText("A hospital already has this short name.")).toBeInTheDocument();
    expect(screen.getByLabelText("Short name")).toHaveAttribute("aria-invalid", "true");

    await user.clear(screen.getByLabelText("Short name"));
    await user.type(screen.getByLabelText("Short name"), "east");
    await user.click(screen.getByRole("button", { name: "Sign and register" }));
    expect(await screen.findByText("East Hospital: Pending: queued for the chain.")).toBeInTheDocument();
    expect(fakeServer.sent.filter((s) => s.method === "POST").at(-1)?.body).toEqual({
      slug: "east",
      name: "East Hospital",
      admin_username: "eadmin",
      password: "cadmin-pw",
      admin_password: "new-admin-pw",
    });
    expect(await screen.findByText("East Hospital: Active.", {}, { timeout: 4000 })).toBeInTheDocument();
  });
});
