import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { TrainingInclusion, TrainingUse } from "../../api/types";
import { ALICE, GENERAL } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";

// Alice's proof in the tree over four addresses, computed by federated/patient_set.py (eth_utils): an
// independent implementation of OpenZeppelin's StandardMerkleTree.
const LEAF = "0xafe701592479558128433d52ee28db668704bc24cb0facd9cd464c80ce8aae59";
const PROOF = [
  "0x8bf1a345c6a3005c40f60d90ccaf7c594aa3227c00eea8092b9466e841d583b4",
  "0x7e771c32d00bf3e056d940782071ed41967c21034e7ec3df2cf411952be775a9",
];
const ROOT = "0x5e79959524d4c1cc0d56c97c4da2ae3703fcfb3c5bc5175a0d0a52a0b4c06749";
const JOB = { id: `0x${"0a".repeat(32)}`, number: 3, name: "Sepsis risk" };
const HOSPITAL = { slug: GENERAL.slug, name: GENERAL.name, hospital_id: GENERAL.hospital_id };

function inclusion(over: Partial<TrainingInclusion> = {}): TrainingInclusion {
  return {
    update_id: "u-1",
    job: JOB,
    round: 2,
    hospital: HOSPITAL,
    pinned_block: 120,
    sample_count: 4,
    patient_root: ROOT,
    leaf: LEAF,
    proof: PROOF,
    root_matches: true,
    chain: { status: "confirmed", block: 130, tx: `0x${"cd".repeat(32)}` },
    ...over,
  };
}

function use(over: Partial<TrainingUse> = {}): TrainingUse {
  return {
    patient: ALICE.eth_address ?? "",
    updates: [inclusion()],
    versions: [
      {
        job: JOB,
        round: 2,
        cid: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        weights_hash: `0x${"ee".repeat(32)}`,
        chain: { status: "confirmed", block: 140, tx: `0x${"ef".repeat(32)}` },
        learned_from: ["u-1"],
      },
    ],
    consents: [{ hospital: HOSPITAL, active: true, consent_ids: ["c-1"], revoke: ["/api/consents/c-1/revoke"] }],
    ...over,
  };
}

function patientWith(answer: { status?: number; body: unknown }) {
  fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", "/api/patients/me/training-use", answer);
}

describe("training use", () => {
  it("is in a patient's navigation", async () => {
    patientWith({ body: use() });
    openAt("/training-use");
    const nav = await screen.findByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Training use" })).toHaveAttribute("aria-current", "page");
  });

  it("lists each version that learned from my records with its chain reference and my proof, and verifies it here", async () => {
    patientWith({ body: use() });
    const { user } = openAt("/training-use");
    const version = await screen.findByRole("article", { name: "Sepsis risk (job 3), version 2" });
    expect(version).toHaveTextContent("On chain in block 140");
    expect(version).toHaveTextContent("General Hospital");
    expect(version).toHaveTextContent("Records as ofblock 120");
    expect(version).toHaveTextContent("On chain in block 130");
    expect(within(version).getByText(ROOT)).toBeInTheDocument();
    expect(within(version).getByText("Your inclusion proof (2 steps)")).toBeInTheDocument();
    expect(within(version).getByText(PROOF[0] as string)).toBeInTheDocument();
    expect(screen.getByText(/your TRAINING consent is in force/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "revoke your TRAINING consent in My consents" })).toHaveAttribute("href", "/consents");

    await user.click(screen.getByRole("button", { name: "Verify the proof for job 3, round 2, General Hospital" }));
    expect(await screen.findByText(/^Verified: the proof leads from your address/)).toHaveAttribute("data-verified", "true");
  });

  it("says when a proof does not reach the root", async () => {
    patientWith({ body: use({ updates: [inclusion({ proof: [PROOF[1] as string] })] }) });
    const { user } = openAt("/training-use");
    await user.click(await screen.findByRole("button", { name: /^Verify the proof/ }));
    expect(await screen.findByText(/^Not verified: the proof leads from your address to 0x/)).toHaveAttribute("data-verified", "false");
  });

  it("follows a version still queued for the chain until it is confirmed", async () => {
    const queued = use();
    const first = queued.versions[0];
    if (!first) throw new Error("fixture has a version");
    let polls = 0;
    fakeServer.on("GET", "/api/me", { body: ALICE }).on("GET", "/api/patients/me/training-use", () => {
      polls += 1;
      const chain = polls < 2 ? { status: "queued", block: null, tx: "" } : first.chain;
      return { body: { ...queued, versions: [{ ...first, chain }] } };
    });
    openAt("/training-use");
    const version = await screen.findByRole("article", { name: "Sepsis risk (job 3), version 2" });
    expect(version).toHaveTextContent("Queued for the chain");
    await screen.findByText(/On chain in block 140/, {}, { timeout: 4000 });
  });

  it("says plainly that no model learned from my records, and how to keep it so", async () => {
    patientWith({ body: use({ updates: [], versions: [], consents: [] }) });
    openAt("/training-use");
    expect(await screen.findByText("No model has learned from your records.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "revoke your TRAINING consent in My consents" })).toHaveAttribute("href", "/consents");
  });

  it("says in words why it cannot be shown", async () => {
    patientWith({ status: 503, body: apiError("chain_unavailable", "The chain node does not answer.") });
    openAt("/training-use");
    expect(await screen.findByRole("alert")).toHaveTextContent("The chain node does not answer.");
  });
});
