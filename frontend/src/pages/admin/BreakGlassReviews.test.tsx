import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { BreakGlass, Me } from "../../api/types";
import { ALICE } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { fakeServer } from "../../test/server";

const ADMIN: Me = { id: 3, username: "hadmin", role: "hospital_admin", eth_address: null, key_kind: "managed", hospital: null };

function glass(over: Partial<BreakGlass> = {}): BreakGlass {
  return {
    id: "5f0c0000-0000-4000-8000-000000000001",
    doctor: { username: "bob", name: "Dr Bob", address: "0xB0B0000000000000000000000000000000000002" },
    hospital: "general",
    patient_address: ALICE.eth_address ?? "",
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

describe("break-glass reviews", () => {
  it("lists the pending ones and sends the admin's verdict", async () => {
    let reviewed = false;
    fakeServer
      .on("GET", "/api/me", { body: ADMIN })
      .on("GET", "/api/break-glass/reviews", () => ({ body: { count: reviewed ? 0 : 1, results: reviewed ? [] : [glass()] } }))
      .on("POST", `/api/break-glass/${glass().id}/review`, () => {
        reviewed = true;
        return { body: glass({ review_status: "justified" }) };
      });
    const { user } = openAt("/break-glass/reviews");
    expect(await screen.findByText("“Unconscious in the ER”")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Justified" }));
    expect(await screen.findByText("No break-glass access waits for review.")).toBeInTheDocument();
    expect(fakeServer.sent.find((s) => s.method === "POST")?.body).toEqual({ verdict: "justified", note: "" });
    expect(fakeServer.sent.find((s) => s.path === "/api/break-glass/reviews")?.query.get("status")).toBe("pending");
  });
});
