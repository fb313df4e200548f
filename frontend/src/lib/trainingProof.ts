// Checking in this browser that my records were in a training update, without taking the server's word:
// the update's patient tree is OpenZeppelin's StandardMerkleTree over addresses, so
//   leaf = keccak256(keccak256(abi.encode(address)))  (my address, hashed twice)
//   node = keccak256(sorted pair)                       (MerkleProof.verify's commutative hash)
// and folding my leaf up the proof must reach the update's patient root (the one on chain). keccak is not
// in WebCrypto: viem's is loaded on the first check, so it stays out of the portal's first load.
import type { TrainingInclusion } from "../api/types";
import { bytesToHex, hexToBytes, type Hex } from "./auditVerify";

export type Keccak = (bytes: Uint8Array) => Uint8Array;

/** OpenZeppelin's standard leaf of one address: keccak256(keccak256(abi.encode(address))). */
export function leafOfAddress(address: string, keccak: Keccak): Hex {
  const encoded = new Uint8Array(32);
  encoded.set(hexToBytes(address), 12); // abi.encode(address): left-padded to 32 bytes
  return bytesToHex(keccak(keccak(encoded)));
}

/** MerkleProof.processProof: the root that `leaf` reaches by the sorted-pair hash. */
export function foldProof(leaf: string, proof: readonly string[], keccak: Keccak): Hex {
  let node = leaf.toLowerCase();
  for (const sibling of proof.map((hash) => hash.toLowerCase())) {
    // Equal-length lower-case hex compares as the bytes do.
    const [left, right] = node < sibling ? [node, sibling] : [sibling, node];
    const joined = new Uint8Array(64);
    joined.set(hexToBytes(left), 0);
    joined.set(hexToBytes(right), 32);
    node = bytesToHex(keccak(joined));
  }
  return node as Hex;
}

export type ProofCheck = { leafIsMine: boolean; reachesRoot: boolean; computedRoot: Hex; sentence: string };

export function checkInclusion(inclusion: Pick<TrainingInclusion, "leaf" | "proof" | "patient_root">, patient: string, keccak: Keccak): ProofCheck {
  const mine = leafOfAddress(patient, keccak);
  const leafIsMine = mine === inclusion.leaf.toLowerCase();
  // Fold from the leaf of my own address, so a proof for someone else's leaf cannot pass.
  const computedRoot = foldProof(mine, inclusion.proof, keccak);
  const reachesRoot = computedRoot === inclusion.patient_root.toLowerCase();
  const sentence = reachesRoot
    ? "Verified: the proof leads from your address to the update's patient root, so your records were in this training update."
    : leafIsMine
      ? `Not verified: the proof leads from your address to ${computedRoot}, not to the update's patient root.`
      : "Not verified: the proof's leaf is not your address's, and it does not lead to the update's patient root.";
  return { leafIsMine, reachesRoot, computedRoot, sentence };
}

/** The check with viem's keccak256, loaded when first needed. */
export async function verifyInclusion(inclusion: Pick<TrainingInclusion, "leaf" | "proof" | "patient_root">, patient: string): Promise<ProofCheck> {
  const { keccak256 } = await import("viem");
  return checkInclusion(inclusion, patient, (bytes) => keccak256(bytes, "bytes"));
}
