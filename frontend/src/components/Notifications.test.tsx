import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { BreakGlass, Me } from "../api/types";
import type { AccessRequest } from "../lib/requests";
import { ALICE, consent, RECORD } from "../test/fixtures";
import { openAt } from "../test/render";
import { fakeServer } from "../test/server";
import { noticesFrom } from "./Notifications";

function glass(id: string): BreakGlass {
  return {
    id,
    doctor: { username: "bob", name: "Dr Bob", address: "0xB0B0000000000000000000000000000000000002" },
    hospital: "general",
    patient_address: ALICE.eth_address ?? "",
    reason: "Unconscious in the ER",
    started_at: "2026-11-30T10:00:00Z",
    expires_at: "2026-11-30T14:00:00Z",
    ended_at: null,
    live: false,
    review_status: "pending",
  };
}

const REQUEST = { id: "r1", status: "pending" } as AccessRequest;

afterEach(() => window.localStorage.clear());

describe("notifications", () => {
  it("derives what needs the user's attention from the API's lists", () => {
    const failed = consent({ id: "c9", revoke_failure_reason: "DeadlineExpired" });
    const notices = noticesFrom(
      {
        breakGlasses: [glass("g1"), glass("g2")],
        requests: [REQUEST, { ...REQUEST, id: "r2" }, { ...REQUEST, id: "r3", status: "declined" }],
        consents: [consent(), failed],
      },
      new Set(["g2"]),
    );
    expect(notices.map((n) => [n.id, n.to])).toEqual([
      ["bg-g1", "/access-log"],
      ["requests", "/requests"],
      ["revoke-c9", "/consents"],
    ]);
    expect(notices[0]?.text).toMatch(/^Dr Bob opened your chart in an emergency on /);
    expect(notices[1]?.text).toBe("2 access requests wait for your answer.");
    expect(notices[2]?.text).toBe(
      "The revocation failed: the signature's deadline passed before it reached the chain. Dr Bob still has access.",
    );
    expect(noticesFrom({ reviews: [glass("g1")] }, new Set())[0]?.text).toBe("1 break-glass access waits for your review.");
    expect(noticesFrom({}, new Set())).toEqual([]);
  });

  it("shows the patient's notifications in the header and remembers the break-glasses seen", async () => {
    fakeServer
      .on("GET", "/api/me", { body: ALICE })
      .on("GET", "/api/records", { body: { count: 1, results: [RECORD] } })
      .on("GET", "/api/patients/me/break-glass", { body: { count: 1, results: [glass("g1")] } })
      .on("GET", "/api/access-requests", { body: { count: 1, results: [REQUEST] } })
      .on("GET", "/api/consents", { body: { count: 1, results: [consent({ revoke_failure_reason: "BadSignature" })] } });
    const { user } = openAt("/records");
    const toggle = await screen.findByRole("button", { name: "Notifications 3 new" });
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    expect(fakeServer.sent.find((s) => s.path === "/api/access-requests")?.query.get("status")).toBe("pending");
    await user.click(toggle);
    expect(screen.getByRole("link", { name: /^Dr Bob opened your chart in an emergency/ })).toHaveAttribute("href", "/access-log");
    expect(screen.getByRole("link", { name: "1 access request waits for your answer." })).toHaveAttribute("href", "/requests");
    expect(screen.getByRole("link", { name: /The revocation failed: the signature did not match your key/ })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Mark emergency accesses as seen" }));
    expect(screen.getByRole("button", { name: "Notifications 2 new" })).toBeInTheDocument();
    expect(screen.queryByText(/opened your chart/)).not.toBeInTheDocument();
    expect(JSON.parse(window.localStorage.getItem(`healthhash.seen-break-glass.${ALICE.id}`) ?? "[]")).toEqual(["g1"]);
  });

  it("says nothing is new when the lists are empty, and stays quiet when they cannot be read", async () => {
    const doctor: Me = { ...ALICE, id: 2, username: "bob", role: "doctor" };
    fakeServer.on("GET", "/api/me", { body: doctor }).on("GET", "/api/consents", "network-error");
    const { user } = openAt("/profile");
    await user.click(await screen.findByRole("button", { name: "Notifications 0 new" }));
    expect(screen.getByText("Nothing new.")).toBeInTheDocument();
  });
});
