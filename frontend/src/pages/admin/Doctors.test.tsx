import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { DoctorEntry, Me } from "../../api/types";
import { BOB, GENERAL } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";
import { checkDoctorForm } from "./Doctors";

const ADMIN: Me = { id: 3, username: "hadmin", role: "hospital_admin", eth_address: null, key_kind: "managed", hospital: GENERAL };
const NEW_ADDRESS = "0xD0C0000000000000000000000000000000000009";

function entry(over: Partial<DoctorEntry> = {}): DoctorEntry {
  return { ...BOB, username: "bob", status: "active", action: null, ...over };
}

const pendingAction = { id: 11, status: "sent", error_code: "", created_at: "2026-12-01T10:00:00Z" };

describe("the hospital admin's doctors", () => {
  it("checks the form in the page before anything is sent", () => {
    const empty = { username: "", doctor_password: "", eth_address: "", email: "", password: "" };
    expect(checkDoctorForm(empty)).toEqual({
      username: "Enter the doctor's username.",
      doctor_password: "Give the doctor a password, or their wallet address below.",
      password: "Enter your password to sign the registration.",
    });
    expect(checkDoctorForm({ ...empty, username: "dr who", eth_address: "0x12", password: "pw" })).toEqual({
      username: "Letters, digits and @ . + - _ only.",
      eth_address: "An Ethereum address is 0x followed by 40 hexadecimal digits.",
    });
    expect(checkDoctorForm({ ...empty, username: "dana", doctor_password: "secret", password: "pw" })).toEqual({});
  });

  it("registers a doctor and follows the registration from pending to active", async () => {
    let dana: DoctorEntry | null = null;
    let reads = 0;
    fakeServer
      .on("GET", "/api/me", { body: ADMIN })
      .on("GET", "/api/doctors", () => ({ body: { count: dana ? 2 : 1, results: dana ? [BOB, dana] : [BOB] } }))
      .on("GET", `/api/doctors/${BOB.id}`, { body: entry() })
      .on("GET", "/api/doctors/8", () => {
        reads += 1;
        return { body: reads >= 2 ? { ...dana, status: "active", active: true } : dana };
      })
      .on("POST", "/api/doctors", (_request, body) => {
        const sent = body as { username: string };
        if (sent.username === "bob") return { status: 409, body: apiError("username_taken", "That username is taken.", "username") };
        dana = entry({ id: 8, user_id: 9, username: "dana", name: "", eth_address: NEW_ADDRESS, active: false, status: "pending", action: pendingAction });
        return { status: 202, body: dana };
      });
    const { user } = openAt("/doctors");
    const bobRow = await screen.findByRole("row", { name: /bob/ });
    expect(within(bobRow).getByText("Active")).toBeInTheDocument();
    expect(fakeServer.sent.find((s) => s.path === "/api/doctors")?.query.get("hospital")).toBe("general");

    await user.click(screen.getByRole("button", { name: "Sign and register" }));
    expect(screen.getByText("Enter the doctor's username.")).toBeInTheDocument();
    expect(screen.getByLabelText("Username")).toHaveAttribute("aria-invalid", "true");
    expect(fakeServer.sent.filter((s) => s.method === "POST")).toHaveLength(0);

    await user.type(screen.getByLabelText("Username"), "bob");
    await user.type(screen.getByLabelText("The doctor's password"), "doc-secret");
    await user.type(screen.getByLabelText("Your password, to sign"), "admin-pw");
    await user.click(screen.getByRole("button", { name: "Sign and register" }));
    expect(await screen.findByText("That username is taken.")).toBeInTheDocument();

    await user.clear(screen.getByLabelText("Username"));
    await user.type(screen.getByLabelText("Username"), "dana");
    await user.click(screen.getByRole("button", { name: "Sign and register" }));
    expect(await screen.findByText("dana: Pending: sent, waiting to be mined.")).toBeInTheDocument();
    expect(fakeServer.sent.filter((s) => s.method === "POST").at(-1)?.body).toEqual({
      username: "dana",
      password: "admin-pw",
      doctor_password: "doc-secret",
    });
    expect(await screen.findByText("dana: Active.", {}, { timeout: 4000 })).toBeInTheDocument();
  });

  it("deactivates a doctor with the admin's password", async () => {
    let deactivated = false;
    fakeServer
      .on("GET", "/api/me", { body: ADMIN })
      .on("GET", "/api/doctors", { body: { count: 1, results: [BOB] } })
      .on("GET", `/api/doctors/${BOB.id}`, () => ({
        body: deactivated ? entry({ active: false, status: "inactive" }) : entry(),
      }))
      .on("POST", `/api/doctors/${BOB.id}/deactivate`, (_request, body) => {
        if ((body as { password: string }).password !== "admin-pw") {
          return { status: 403, body: apiError("wrong_password", "The password is wrong.", "password") };
        }
        deactivated = true;
        return { status: 202, body: entry({ status: "pending" }) };
      });
    const { user } = openAt("/doctors");
    await user.click(await screen.findByRole("button", { name: "Deactivate bob" }));
    const form = screen.getByRole("form", { name: "Deactivate bob" });
    await user.type(within(form).getByLabelText("Your password, to sign"), "nope");
    await user.click(within(form).getByRole("button", { name: "Sign and deactivate" }));
    expect(await within(form).findByText("The password is wrong.")).toBeInTheDocument();
    await user.clear(within(form).getByLabelText("Your password, to sign"));
    await user.type(within(form).getByLabelText("Your password, to sign"), "admin-pw");
    await user.click(within(form).getByRole("button", { name: "Sign and deactivate" }));
    expect(await screen.findByText("bob: Inactive.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Deactivate bob" })).not.toBeInTheDocument();
  });
});
