import { screen, within } from "@testing-library/react";
import { sha256, concat, hexToBytes, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import type { AccessLogEntry } from "../../api/types";
import { ALICE, BOB_ADDRESS } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { fakeServer } from "../../test/server";
import { basisInWords } from "./AccessLog";

const PATIENT = ALICE.eth_address ?? "";

function entry(seq: number, over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    seq,
    at: "2026-11-30T10:00:00.000000Z",
    actor: { username: "bob", role: "doctor", address: BOB_ADDRESS },
    action: "open",
    purpose: "TREATMENT",
    outcome: "allowed",
    legal_basis: "consent:0b7e@12",
    record_id: "7d1c8f0e-0000-4000-8000-000000000001",
    reason: "",
    detail: null,
    entry_hash: `0x${"00".repeat(32)}`,
    anchored: false,
    ...over,
  };
}

/** A two-entry log, hashed by the documented rule, not anchored yet. */
function unanchoredProof() {
  let prev: Hex = `0x${"00".repeat(32)}`;
  const entries = [1, 2].map((seq) => {
    const canonical = JSON.stringify({ patient: PATIENT, seq, v: 1 });
    const bytes = new TextEncoder().encode(canonical);
    const entry_hash = sha256(concat([hexToBytes(prev), bytes]), "hex");
    const row = { seq, canonical_b64: btoa(canonical), prev_hash: prev, entry_hash };
    prev = entry_hash;
    return row;
  });
  return { patient: PATIENT, entries, anchor: null, rpc_url: "" };
}

describe("my access log", () => {
  it("shows who, what, when and why, marks break-glass, and offers the downloads", async () => {
    fakeServer
      .on("GET", "/api/me", { body: ALICE })
      .on("GET", "/api/patients/me/break-glass", { body: { count: 0, results: [] } })
      .on("GET", "/api/patients/me/access-log", {
        body: {
          count: 2,
          results: [
            entry(2, {
              action: "break_glass",
              purpose: "EMERGENCY",
              legal_basis: "break_glass:5f0c",
              record_id: null,
              reason: "Unconscious in the ER",
            }),
            entry(1),
          ],
        },
      });
    openAt("/access-log");
    expect(await screen.findByRole("heading", { level: 1, name: "Access log" })).toBeInTheDocument();
    const rows = await screen.findAllByRole("row");
    const glass = rows[1] as HTMLElement;
    expect(glass).toHaveAttribute("data-break-glass", "true");
    expect(within(glass).getByText("Break-glass")).toBeInTheDocument();
    expect(glass).toHaveTextContent("Unconscious in the ER");
    expect(glass).toHaveTextContent("For an emergency");
    const open = rows[2] as HTMLElement;
    expect(open).not.toHaveAttribute("data-break-glass");
    expect(open).toHaveTextContent("bob (doctor)");
    expect(open).toHaveTextContent("your consent (in force at block 12)");
    expect(screen.getByRole("link", { name: "Download CSV" })).toHaveAttribute(
      "href",
      "/api/patients/me/access-log?format=csv",
    );
    expect(screen.getByRole("link", { name: /Download FHIR/ })).toHaveAttribute(
      "href",
      "/api/patients/me/access-log?format=fhir",
    );
  });

  it("verifies in the page and says in words that nothing is anchored yet", async () => {
    const proof = unanchoredProof();
    fakeServer
      .on("GET", "/api/me", { body: ALICE })
      .on("GET", "/api/patients/me/break-glass", { body: { count: 0, results: [] } })
      .on("GET", "/api/patients/me/access-log", {
        body: { count: 1, results: [entry(2, { entry_hash: proof.entries[1]!.entry_hash })] },
      })
      .on("GET", "/api/patients/me/access-log/proof", { body: proof });
    const { user } = openAt("/access-log");
    await user.click(await screen.findByRole("button", { name: "Verify" }));
    const result = screen.getByTestId("verify-result");
    expect(await within(result).findByText("Your access log is linked, but not anchored on the chain yet.")).toBeInTheDocument();
    expect(result).toHaveTextContent("All 2 entries link up");
  });

  it("says what failed when an entry was changed", async () => {
    const proof = unanchoredProof();
    proof.entries[0]!.canonical_b64 = btoa(JSON.stringify({ patient: PATIENT, seq: 1, v: 2 }));
    fakeServer
      .on("GET", "/api/me", { body: ALICE })
      .on("GET", "/api/patients/me/break-glass", { body: { count: 0, results: [] } })
      .on("GET", "/api/patients/me/access-log", { body: { count: 0, results: [] } })
      .on("GET", "/api/patients/me/access-log/proof", { body: proof });
    const { user } = openAt("/access-log");
    await user.click(await screen.findByRole("button", { name: "Verify" }));
    const result = screen.getByTestId("verify-result");
    expect(await within(result).findByText("Your access log is NOT whole.")).toBeInTheDocument();
    expect(result).toHaveTextContent("Entry 1 was changed after it was written");
  });
});

describe("basisInWords", () => {
  it("reads each kind of legal basis", () => {
    expect(basisInWords("owner")).toBe("you own these records");
    expect(basisInWords("none")).toBe("nothing allowed it");
    expect(basisInWords("break_glass:abc")).toContain("break-glass");
    expect(basisInWords("consent:abc@7")).toBe("your consent (in force at block 7)");
  });
});
