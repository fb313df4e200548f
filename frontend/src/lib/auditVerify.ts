// Verifying my access log in the browser, trusting nothing the server says: the hash chain is recomputed
// from the entries' canonical bytes, the latest anchored head's leaf is folded up its Merkle proof, and the
// root it reaches is compared with the one the Anchors contract returns over JSON-RPC (through `ChainReader`,
// which the page backs with viem). The rules are the API's (GET /api/patients/me/access-log/proof):
//   entry_hash(n) = sha256(entry_hash(n-1) || canonical(n)), entry_hash(0) = 32 zero bytes
//   leaf = sha256(0x00 || patient (20 bytes) || seq (uint64 big-endian) || head hash)
//   node = sha256(0x01 || left || right); a step "L" has the sibling on the left
// Hashing is the browser's own (WebCrypto), so this module adds nothing to the portal's first load; viem is
// loaded by the page only to read the chain.
import type { AccessLogProof } from "../api/types";

export type Hex = `0x${string}`;

export function hexToBytes(hex: string): Uint8Array {
  const digits = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (digits.length % 2 || /[^0-9a-fA-F]/.test(digits)) throw new Error(`not hex: ${hex}`);
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

const isHash = (value: string) => /^0x[0-9a-fA-F]{64}$/.test(value);

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  // WebCrypto exists only in secure contexts (https, or http on this machine).
  if (!globalThis.crypto?.subtle) throw new Error("Verifying needs a secure connection (https) to this site.");
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

export const GENESIS: Hex = `0x${"00".repeat(32)}`;
/** keccak256("AuditRootAnchored(bytes32,bytes32,uint32)"): the event that anchors a batch's root. */
export const AUDIT_ROOT_TOPIC: Hex = "0xa1f7dd3cf67ad015bfdf8777c4043cd30d4f39d2bc12d3f9c302fbdf4b1652f7";
const ZERO_ROOT = GENESIS;

export type ChainReader = {
  url: string;
  chainId(): Promise<number>;
  auditRootOf(contract: Hex, batchId: Hex): Promise<Hex>;
  receipt(txHash: Hex): Promise<{ blockNumber: bigint; logs: { address: string; topics: readonly string[] }[] } | null>;
};

export type VerdictStatus = "whole" | "empty" | "not-anchored" | "broken" | "unchecked";

export type Verdict = {
  status: VerdictStatus;
  /** One sentence in plain words. */
  headline: string;
  /** What was checked (facts), and what failed (problems), each a sentence. */
  facts: string[];
  problems: string[];
  /** The recomputed hash of each entry, by seq. */
  hashes: Map<number, Hex>;
};

function base64Bytes(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

const same = (a: string | null | undefined, b: string | null | undefined) =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase();

export type ChainCheck = { hashes: Map<number, Hex>; problems: string[]; lastSeq: number };

/** Recomputes the chain from the genesis; every break is named by its entry. */
export async function checkChain(proof: AccessLogProof, patient: string): Promise<ChainCheck> {
  const hashes = new Map<number, Hex>();
  const problems: string[] = [];
  let prev: Hex = GENESIS;
  let expected = 1;
  const decoder = new TextDecoder();
  for (const entry of proof.entries) {
    if (entry.seq !== expected) {
      problems.push(
        entry.seq > expected
          ? `Entry ${expected}${entry.seq - expected > 1 ? ` to ${entry.seq - 1}` : ""} is missing.`
          : `Entry ${entry.seq} is out of order.`,
      );
    }
    if (!same(entry.prev_hash, prev)) {
      problems.push(`Entry ${entry.seq} does not follow the entry before it (its previous hash differs).`);
    }
    const canonical = base64Bytes(entry.canonical_b64);
    if (!canonical) {
      problems.push(`Entry ${entry.seq} cannot be read (its bytes are not base64).`);
      expected = entry.seq + 1;
      continue;
    }
    const computed = bytesToHex(await sha256(hexToBytes(prev), canonical));
    if (!same(computed, entry.entry_hash)) {
      problems.push(`Entry ${entry.seq} was changed after it was written (its hash does not match its content).`);
    }
    try {
      const content = JSON.parse(decoder.decode(canonical)) as { seq?: unknown; patient?: unknown };
      if (content.seq !== entry.seq || !same(String(content.patient), patient)) {
        problems.push(`Entry ${entry.seq} belongs to another log or another place in it.`);
      }
    } catch {
      problems.push(`Entry ${entry.seq} cannot be read (its content is not JSON).`);
    }
    hashes.set(entry.seq, computed);
    // Go on from what the entry says it is, so one altered entry is reported once, not at every later link.
    prev = isHash(entry.entry_hash) ? (entry.entry_hash as Hex) : computed;
    expected = entry.seq + 1;
  }
  return { hashes, problems, lastSeq: expected - 1 };
}

export async function leafHash(patient: string, seq: number, headHash: string): Promise<Hex> {
  const seqBytes = new Uint8Array(8);
  new DataView(seqBytes.buffer).setBigUint64(0, BigInt(seq));
  return bytesToHex(await sha256(new Uint8Array([0]), hexToBytes(patient), seqBytes, hexToBytes(headHash)));
}

export async function rootFromProof(leaf: string, steps: readonly { side: "L" | "R"; hash: string }[]): Promise<Hex> {
  let node = hexToBytes(leaf);
  for (const step of steps) {
    const sibling = hexToBytes(step.hash);
    node = step.side === "L" ? await sha256(new Uint8Array([1]), sibling, node) : await sha256(new Uint8Array([1]), node, sibling);
  }
  return bytesToHex(node);
}

/** The whole check: chain, then the head's proof against the root read from the chain by `reader`. */
export async function verifyAccessLog(
  proof: AccessLogProof,
  options: { patient: string; reader: ChainReader | null; shown?: readonly { seq: number; entry_hash: string }[] },
): Promise<Verdict> {
  const facts: string[] = [];
  const problems: string[] = [];
  if (!same(proof.patient, options.patient)) {
    problems.push("The server sent another patient's log.");
  }
  const chain = await checkChain(proof, options.patient);
  problems.push(...chain.problems);
  const sent = new Map(proof.entries.map((entry) => [entry.seq, entry.entry_hash]));
  for (const row of options.shown ?? []) {
    // The rows on the page came from another request: each must be an entry that was just checked.
    if (!same(sent.get(row.seq), row.entry_hash)) problems.push(`The entry shown as number ${row.seq} is not the one verified.`);
  }
  const count = proof.entries.length;
  if (!chain.problems.length && count) {
    facts.push(count === 1 ? "The log's one entry is intact." : `All ${count} entries link up, from the first to the last.`);
  }
  const verdict = (status: VerdictStatus, headline: string): Verdict => ({
    status,
    headline,
    facts,
    problems,
    hashes: chain.hashes,
  });
  const broken = () => verdict("broken", "Your access log is NOT whole.");

  const anchor = proof.anchor;
  if (!anchor) {
    if (problems.length) return broken();
    if (!count) return verdict("empty", "Your access log has no entries yet: nothing to verify.");
    facts.push("None is anchored on the chain yet, so nothing outside this server vouches for them. Verify again later.");
    return verdict("not-anchored", "Your access log is linked, but not anchored on the chain yet.");
  }

  const head = chain.hashes.get(anchor.seq);
  const headMatches = !!head && same(head, anchor.head_hash);
  if (!head) problems.push(`The anchored entry ${anchor.seq} is not in the log.`);
  else if (!headMatches) problems.push(`Entry ${anchor.seq} is not what was anchored on the chain.`);
  const root = await rootFromProof(await leafHash(options.patient, anchor.seq, head ?? anchor.head_hash), anchor.proof);

  if (!anchor.contract_address || anchor.chain_id == null) {
    problems.push("The server names no Anchors contract to check the root against.");
    return broken();
  }
  if (!options.reader) {
    problems.push("No chain node is published to read the anchored root from.");
    return verdict("unchecked", "Your access log could not be checked against the chain.");
  }
  const reader = options.reader;
  let onChain: Hex;
  try {
    const chainId = await reader.chainId();
    if (chainId !== anchor.chain_id) {
      problems.push(`The chain node at ${reader.url} is on chain ${chainId}, not chain ${anchor.chain_id}.`);
      return verdict("unchecked", "Your access log could not be checked against the chain.");
    }
    onChain = await reader.auditRootOf(anchor.contract_address as Hex, anchor.batch_id as Hex);
  } catch (error) {
    problems.push(`The chain node at ${reader.url} did not answer: ${(error as Error).message.split("\n")[0]}`);
    return verdict("unchecked", "Your access log could not be checked against the chain.");
  }
  if (same(onChain, ZERO_ROOT)) {
    problems.push(`The Anchors contract holds no root for batch ${anchor.batch_id}.`);
  } else if (!same(onChain, root)) {
    // A changed head already says why the proof cannot reach the root.
    if (headMatches) problems.push(`The Merkle proof of entry ${anchor.seq} does not lead to the root that the Anchors contract holds.`);
  } else {
    facts.push(
      `Entry ${anchor.seq} is anchored: its Merkle proof leads to the root ${onChain} that the Anchors contract ` +
        `${anchor.contract_address} holds on chain ${anchor.chain_id}, read from ${reader.url}.`,
    );
  }
  await checkTransaction(reader, anchor, problems, facts);
  if (problems.length) return broken();
  const newer = chain.lastSeq - anchor.seq;
  if (newer > 0) {
    facts.push(`${newer === 1 ? "1 newer entry is" : `${newer} newer entries are`} linked to it but not anchored yet.`);
  }
  return verdict("whole", "Your access log is whole.");
}

async function checkTransaction(
  reader: ChainReader,
  anchor: NonNullable<AccessLogProof["anchor"]>,
  problems: string[],
  facts: string[],
): Promise<void> {
  let receipt: Awaited<ReturnType<ChainReader["receipt"]>>;
  try {
    receipt = await reader.receipt(anchor.tx_hash as Hex);
  } catch {
    receipt = null;
  }
  const emitted = receipt?.logs.some(
    (log) =>
      same(log.address, anchor.contract_address) &&
      same(log.topics[0], AUDIT_ROOT_TOPIC) &&
      same(log.topics[1], anchor.batch_id),
  );
  if (!receipt || !emitted) {
    problems.push(`The transaction ${anchor.tx_hash} named by the server did not anchor this batch.`);
  } else if (anchor.block_number != null && receipt.blockNumber !== BigInt(anchor.block_number)) {
    problems.push(`The anchoring transaction is in block ${receipt.blockNumber}, not block ${anchor.block_number}.`);
  } else {
    facts.push(`It was anchored by transaction ${anchor.tx_hash} in block ${receipt.blockNumber}.`);
  }
}
