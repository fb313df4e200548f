import { keccak256, toBytes } from "viem";
import { describe, expect, it } from "vitest";
import type { AccessLogProof } from "../api/types";
import { AUDIT_ROOT_TOPIC, checkChain, leafHash, rootFromProof, verifyAccessLog, type ChainReader, type Hex } from "./auditVerify";

// Computed by the server's own code (access/audit/log.py canonical_bytes + chain_hash, anchoring.py
// leaf_hash + merkle_proof) for a 3-entry log whose entry 2 (a break-glass) was anchored in a batch of
// 4 heads: an independent implementation for this module to agree with.
const PATIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const ROOT: Hex = "0xe1f3924aa8003869b1d721cb9fd3a6aa64b6e5a9b847511a8ca77e43643a6112";
const BATCH: Hex = `0x${"ab".repeat(32)}`;
const TX: Hex = `0x${"cd".repeat(32)}`;
const ANCHORS = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

function proof(): AccessLogProof {
  return {
    patient: PATIENT,
    entries: [
      {
        seq: 1,
        canonical_b64:
          "eyJhY3Rpb24iOiJvcGVuIiwiYWN0b3IiOnsiYWRkcmVzcyI6IjB4M0M0NENkRGRCNmE5MDBmYTJiNTg1ZGQyOTllMDNkMTJGQTQyOTNCQyIsImlkIjo3LCJyb2xlIjoiZG9jdG9yIiwidXNlcm5hbWUiOiJib2IifSwiYXQiOiIyMDI2LTExLTMwVDEwOjAxOjAwLjAwMDAwMFoiLCJkZXRhaWwiOm51bGwsImxlZ2FsX2Jhc2lzIjoiY29uc2VudDowYjdlQDEyIiwib3V0Y29tZSI6ImFsbG93ZWQiLCJwYXRpZW50IjoiMHg3MDk5Nzk3MEM1MTgxMmRjM0EwMTBDN2QwMWI1MGUwZDE3ZGM3OUM4IiwicHVycG9zZSI6IlRSRUFUTUVOVCIsInJlYXNvbiI6IiIsInJlY29yZCI6InJlYy0xIiwic2VxIjoxLCJ2IjoxfQ==",
        prev_hash: `0x${"00".repeat(32)}`,
        entry_hash: "0x3ac0e5d2c036e1819af3fb7462b8cc6abd80081763af78bcea965ee6ed6ba401",
      },
      {
        seq: 2,
        canonical_b64:
          "eyJhY3Rpb24iOiJicmVha19nbGFzcyIsImFjdG9yIjp7ImFkZHJlc3MiOiIweDNDNDRDZERkQjZhOTAwZmEyYjU4NWRkMjk5ZTAzZDEyRkE0MjkzQkMiLCJpZCI6Nywicm9sZSI6ImRvY3RvciIsInVzZXJuYW1lIjoiYm9iIn0sImF0IjoiMjAyNi0xMS0zMFQxMDowMjowMC4wMDAwMDBaIiwiZGV0YWlsIjp7Imhvc3BpdGFsIjoiZ2VuZXJhbCJ9LCJsZWdhbF9iYXNpcyI6ImJyZWFrX2dsYXNzOjVmMGMiLCJvdXRjb21lIjoiYWxsb3dlZCIsInBhdGllbnQiOiIweDcwOTk3OTcwQzUxODEyZGMzQTAxMEM3ZDAxYjUwZTBkMTdkYzc5QzgiLCJwdXJwb3NlIjoiRU1FUkdFTkNZIiwicmVhc29uIjoiVW5jb25zY2lvdXMgaW4gdGhlIEVSLCBhbGxlcmdpZXMgdW5rbm93biIsInJlY29yZCI6bnVsbCwic2VxIjoyLCJ2IjoxfQ==",
        prev_hash: "0x3ac0e5d2c036e1819af3fb7462b8cc6abd80081763af78bcea965ee6ed6ba401",
        entry_hash: "0x027ee9c06746e17183ba51488b0ecab6ded81742515971cffb4ddc80b8b389fd",
      },
      {
        seq: 3,
        canonical_b64:
          "eyJhY3Rpb24iOiJkZW55IiwiYWN0b3IiOnsiYWRkcmVzcyI6IjB4M0M0NENkRGRCNmE5MDBmYTJiNTg1ZGQyOTllMDNkMTJGQTQyOTNCQyIsImlkIjo3LCJyb2xlIjoiZG9jdG9yIiwidXNlcm5hbWUiOiJib2IifSwiYXQiOiIyMDI2LTExLTMwVDEwOjAzOjAwLjAwMDAwMFoiLCJkZXRhaWwiOm51bGwsImxlZ2FsX2Jhc2lzIjoibm9uZSIsIm91dGNvbWUiOiJkZW5pZWQiLCJwYXRpZW50IjoiMHg3MDk5Nzk3MEM1MTgxMmRjM0EwMTBDN2QwMWI1MGUwZDE3ZGM3OUM4IiwicHVycG9zZSI6IlRSRUFUTUVOVCIsInJlYXNvbiI6Im5vX2NvbnNlbnQiLCJyZWNvcmQiOiJyZWMtMiIsInNlcSI6MywidiI6MX0=",
        prev_hash: "0x027ee9c06746e17183ba51488b0ecab6ded81742515971cffb4ddc80b8b389fd",
        entry_hash: "0x64afd3795254b6a25fe109991e62c01712ae5f22b04fa030a47ce5afc3830723",
      },
    ],
    anchor: {
      seq: 2,
      head_hash: "0x027ee9c06746e17183ba51488b0ecab6ded81742515971cffb4ddc80b8b389fd",
      leaf_hash: "0x4b0326adb875fd7623600d15c89142d7a256262f8544761094685fba122d0ce6",
      leaf_index: 1,
      proof: [
        { side: "L", hash: "0x9f4e7dbf4f914561b94c73893ec5f92641d8eb9c8c1239712c9337528db4c33e" },
        { side: "R", hash: "0x882b66f39e89ae9f97fb1f4cadc58a3a32fe05e454bfd622d2b0737763e180f2" },
      ],
      root: ROOT,
      batch_id: BATCH,
      head_count: 4,
      tx_hash: TX,
      block_number: 42,
      anchored_at: "2026-11-30T10:05:00Z",
      contract_address: ANCHORS,
      chain_id: 31337,
    },
    rpc_url: "http://127.0.0.1:8545",
  };
}

function chainHolding(root: Hex, overrides: Partial<ChainReader> = {}): ChainReader {
  return {
    url: "http://127.0.0.1:8545",
    chainId: async () => 31337,
    auditRootOf: async (contract, batchId) => (contract === ANCHORS && batchId === BATCH ? root : `0x${"00".repeat(32)}`),
    receipt: async (hash) =>
      hash === TX ? { blockNumber: 42n, logs: [{ address: ANCHORS.toLowerCase(), topics: [AUDIT_ROOT_TOPIC, BATCH] }] } : null,
    ...overrides,
  };
}

const verify = (body: AccessLogProof, reader: ChainReader | null = chainHolding(ROOT)) =>
  verifyAccessLog(body, { patient: PATIENT, reader });

function rewritten(body: AccessLogProof, seq: number, edit: (json: string) => string): AccessLogProof {
  const entry = body.entries.find((e) => e.seq === seq)!;
  entry.canonical_b64 = btoa(edit(atob(entry.canonical_b64)));
  return body;
}

describe("the rules, against the server's own hashing", () => {
  it("recomputes every entry hash of the chain", async () => {
    const check = await checkChain(proof(), PATIENT);
    expect(check.problems).toEqual([]);
    expect(check.hashes.get(3)).toBe(proof().entries[2]!.entry_hash);
    expect(check.lastSeq).toBe(3);
  });

  it("computes the same leaf and root", async () => {
    const anchor = proof().anchor!;
    const leaf = await leafHash(PATIENT, 2, anchor.head_hash);
    expect(leaf).toBe(anchor.leaf_hash);
    expect(await rootFromProof(leaf, anchor.proof)).toBe(ROOT);
  });

  it("knows the AuditRootAnchored event by its topic", () => {
    expect(AUDIT_ROOT_TOPIC).toBe(keccak256(toBytes("AuditRootAnchored(bytes32,bytes32,uint32)")));
  });
});

describe("verifyAccessLog", () => {
  it("says the log is whole when the proof reaches the root on chain", async () => {
    const verdict = await verify(proof());
    expect(verdict.problems).toEqual([]);
    expect(verdict.status).toBe("whole");
    expect(verdict.headline).toBe("Your access log is whole.");
    expect(verdict.facts.join(" ")).toContain("All 3 entries link up, from the first to the last.");
    expect(verdict.facts.join(" ")).toContain(`Entry 2 is anchored: its Merkle proof leads to the root ${ROOT}`);
    expect(verdict.facts.join(" ")).toContain("in block 42");
    expect(verdict.facts.join(" ")).toContain("1 newer entry is linked to it but not anchored yet.");
  });

  it("names an entry changed after it was written", async () => {
    const verdict = await verify(rewritten(proof(), 3, (json) => json.replace("no_consent", "consent!!")));
    expect(verdict.status).toBe("broken");
    expect(verdict.headline).toBe("Your access log is NOT whole.");
    expect(verdict.problems).toEqual(["Entry 3 was changed after it was written (its hash does not match its content)."]);
  });

  it("says the anchored entry is not what the chain holds when it was changed", async () => {
    const verdict = await verify(rewritten(proof(), 2, (json) => json.replace("allergies unknown", "check-up")));
    expect(verdict.status).toBe("broken");
    expect(verdict.problems).toEqual([
      "Entry 2 was changed after it was written (its hash does not match its content).",
      "Entry 2 is not what was anchored on the chain.",
    ]);
  });

  it("fails a rewritten log whose hashes were all recomputed, on the root held on chain", async () => {
    const body = rewritten(proof(), 1, (json) => json.replace("rec-1", "rec-9"));
    const rehashed = (await checkChain(body, PATIENT)).hashes; // the forger recomputes entry 1...
    body.entries[0]!.entry_hash = rehashed.get(1)!;
    body.entries[1]!.prev_hash = rehashed.get(1)!;
    const second = (await checkChain(body, PATIENT)).hashes; // ...and every hash after it
    body.entries[1]!.entry_hash = second.get(2)!;
    body.entries[2]!.prev_hash = second.get(2)!;
    body.entries[2]!.entry_hash = (await checkChain(body, PATIENT)).hashes.get(3)!;
    body.anchor!.head_hash = second.get(2)!;
    expect((await checkChain(body, PATIENT)).problems).toEqual([]);
    const verdict = await verify(body);
    expect(verdict.status).toBe("broken");
    expect(verdict.problems).toEqual(["The Merkle proof of entry 2 does not lead to the root that the Anchors contract holds."]);
  });

  it("names a missing entry", async () => {
    const body = proof();
    body.entries.splice(1, 1);
    const verdict = await verify(body);
    expect(verdict.status).toBe("broken");
    expect(verdict.problems).toContain("Entry 2 is missing.");
    expect(verdict.problems).toContain("The anchored entry 2 is not in the log.");
  });

  it("refuses another patient's log", async () => {
    const verdict = await verifyAccessLog(proof(), { patient: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", reader: chainHolding(ROOT) });
    expect(verdict.status).toBe("broken");
    expect(verdict.problems[0]).toBe("The server sent another patient's log.");
  });

  it("says so when the contract holds no root for the batch", async () => {
    const verdict = await verify(proof(), chainHolding(`0x${"00".repeat(32)}`));
    expect(verdict.problems).toContain(`The Anchors contract holds no root for batch ${BATCH}.`);
  });

  it("does not believe a transaction that did not anchor the batch", async () => {
    const reader = chainHolding(ROOT, { receipt: async () => ({ blockNumber: 42n, logs: [] }) });
    const verdict = await verify(proof(), reader);
    expect(verdict.status).toBe("broken");
    expect(verdict.problems).toEqual([`The transaction ${TX} named by the server did not anchor this batch.`]);
  });

  it("cannot check against a node of another chain, or one that does not answer", async () => {
    const other = await verify(proof(), chainHolding(ROOT, { chainId: async () => 1 }));
    expect(other.status).toBe("unchecked");
    expect(other.problems).toEqual(["The chain node at http://127.0.0.1:8545 is on chain 1, not chain 31337."]);
    const down = await verify(proof(), chainHolding(ROOT, { chainId: () => Promise.reject(new Error("fetch failed")) }));
    expect(down.status).toBe("unchecked");
    expect(down.problems).toEqual(["The chain node at http://127.0.0.1:8545 did not answer: fetch failed"]);
    const none = await verify(proof(), null);
    expect(none.status).toBe("unchecked");
  });

  it("says a log not anchored yet is linked but not vouched for, and an empty one has nothing to check", async () => {
    const body = { ...proof(), anchor: null };
    const verdict = await verify(body);
    expect(verdict.status).toBe("not-anchored");
    expect(verdict.facts.join(" ")).toContain("None is anchored on the chain yet");
    expect((await verify({ ...body, entries: [] })).status).toBe("empty");
  });

  it("checks that the entries shown are the ones verified", async () => {
    const verdict = await verifyAccessLog(proof(), {
      patient: PATIENT,
      reader: chainHolding(ROOT),
      shown: [{ seq: 3, entry_hash: `0x${"11".repeat(32)}` }],
    });
    expect(verdict.problems).toEqual(["The entry shown as number 3 is not the one verified."]);
  });
});
