// Checks a patient's inclusion proof as anyone can, with OpenZeppelin's @openzeppelin/merkle-tree (the JS
// twin of MerkleProof.sol), independently of federated/patient_set.py. stdin: {"root": "0x..", "address":
// "0x..", "proof": ["0x..", ...], "addresses"?: ["0x..", ...]}; stdout: {"verified": bool, "leaf": "0x..",
// "root_of_addresses": "0x.." | null} (the root StandardMerkleTree.of builds over `addresses`, if given).
import { readFileSync } from "node:fs";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const { root, address, proof, addresses } = JSON.parse(readFileSync(0, "utf8"));
const verified = StandardMerkleTree.verify(root, ["address"], [address], proof);
const leaf = StandardMerkleTree.of([[address]], ["address"]).leafHash([address]);
const rootOfAddresses = addresses ? StandardMerkleTree.of(addresses.map((a) => [a]), ["address"]).root : null;
process.stdout.write(JSON.stringify({ verified, leaf, root_of_addresses: rootOfAddresses }) + "\n");
