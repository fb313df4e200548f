"""The Merkle tree over the patients of one training update, as OpenZeppelin builds and checks it.

An update carries `patientRoot` on chain: the root of the tree whose leaves are the included patients'
addresses. A patient proves their inclusion with a proof that anyone can check with OpenZeppelin's
`MerkleProof.verify` (Solidity) or `@openzeppelin/merkle-tree` (JS): the tree is exactly
`StandardMerkleTree.of([[address], ...], ["address"])`: leaf = keccak256(keccak256(abi.encode(address)))
(hashed twice, so a leaf can never pass for an inner node), inner node = keccak256 of the sorted pair,
leaves sorted, laid out as a complete binary tree in one array (the library's layout, so the roots agree).
Pure Python (eth_utils): the hospital worker computes the root, the server the proofs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_utils import keccak, to_canonical_address

_ADDRESS_PAD = bytes(12)  # abi.encode(address): the 20 bytes right-aligned in one 32-byte word


def leaf_of(address: str) -> bytes:
    """keccak256(keccak256(abi.encode(address))): OpenZeppelin's standard leaf of one address."""
    return keccak(keccak(_ADDRESS_PAD + to_canonical_address(address)))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


@dataclass(frozen=True)
class PatientTree:
    """The tree over a set of patient addresses (duplicates count once, order does not matter)."""

    nodes: tuple[bytes, ...]  # the array layout: root at 0, children of i at 2i+1 and 2i+2
    index_of: dict[bytes, int]  # leaf -> its index in `nodes`

    @classmethod
    def of(cls, addresses: Iterable[str]) -> PatientTree:
        leaves = sorted({leaf_of(address) for address in addresses})
        if not leaves:
            raise ValueError("a patient tree needs at least one patient")
        size = 2 * len(leaves) - 1
        nodes: list[bytes] = [b""] * size
        for i, leaf in enumerate(leaves):
            nodes[size - 1 - i] = leaf
        for i in range(size - 1 - len(leaves), -1, -1):
            nodes[i] = _pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(
            nodes=tuple(nodes), index_of={nodes[size - 1 - i]: size - 1 - i for i in range(len(leaves))}
        )

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, address: str) -> list[bytes]:
        """The sibling hashes from the address's leaf up to the root; KeyError if it is not in the set."""
        index = self.index_of[leaf_of(address)]
        path = []
        while index > 0:
            path.append(self.nodes[index + 1 if index % 2 else index - 1])
            index = (index - 1) // 2
        return path


def root_of(addresses: Iterable[str]) -> bytes:
    return PatientTree.of(addresses).root


def verify(*, root: bytes, address: str, proof: Sequence[bytes]) -> bool:
    """OpenZeppelin's MerkleProof.verify for the address's leaf."""
    current = leaf_of(address)
    for sibling in proof:
        current = _pair(current, sibling)
    return current == root
