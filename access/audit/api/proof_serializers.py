"""Serializers of the access-log proof: bytes as 0x-hex (hashes) or base64 (canonical entries)."""

from __future__ import annotations

import base64
from typing import Any

from rest_framework import serializers

from access.audit.proof import AccessLogProof, HeadProof, ProofEntry


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class ProofEntryOut(serializers.Serializer):
    seq = serializers.IntegerField()
    canonical_b64 = serializers.CharField(
        help_text="The exact bytes the entry's hash commits to, base64 (standard alphabet, padded): compact "
        "JSON with sorted keys, ASCII only, carrying v, patient, seq, at, actor, action, purpose, outcome, "
        "legal_basis, record, reason, detail. Hash these bytes; never re-encode the decoded JSON."
    )
    prev_hash = serializers.CharField(
        help_text="0x-hex: the stored hash of the entry before (32 zero bytes for the first entry)."
    )
    entry_hash = serializers.CharField(help_text="0x-hex sha256(prev_hash || canonical bytes), as stored.")

    def to_representation(self, entry: ProofEntry) -> dict[str, Any]:
        return {
            "seq": entry.seq,
            "canonical_b64": base64.b64encode(entry.canonical).decode("ascii"),
            "prev_hash": _hex(entry.prev_hash),
            "entry_hash": _hex(entry.entry_hash),
        }


class ProofStepOut(serializers.Serializer):
    side = serializers.ChoiceField(
        choices=["L", "R"],
        help_text="L: the sibling is on the left, node = sha256(0x01 || sibling || current); "
        "R: node = sha256(0x01 || current || sibling).",
    )
    hash = serializers.CharField(help_text="0x-hex sibling hash.")


class HeadProofOut(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The anchored head's seq (the patient's latest anchored entry).")
    head_hash = serializers.CharField(help_text="0x-hex entry_hash of that entry, as anchored.")
    leaf_hash = serializers.CharField(
        help_text="0x-hex sha256(0x00 || patient (20 bytes) || seq (uint64 big-endian) || head_hash), "
        "for reference: recompute it."
    )
    leaf_index = serializers.IntegerField(help_text="Position of the leaf among the batch's sorted leaves.")
    proof = ProofStepOut(many=True, help_text="Sibling path from the leaf up to the root.")
    # DRF's metaclass pops declared fields off the class, so this never shadows Field.root at run time.
    root = serializers.CharField(  # type: ignore[assignment]
        help_text="0x-hex Merkle root of the batch, as the server computed it."
    )
    batch_id = serializers.CharField(help_text="0x-hex bytes32: read Anchors.auditRootOf(batch_id) on chain.")
    head_count = serializers.IntegerField()
    tx_hash = serializers.CharField(help_text="The transaction that emitted AuditRootAnchored for the batch.")
    block_number = serializers.IntegerField(allow_null=True)
    anchored_at = serializers.DateTimeField(allow_null=True)
    contract_address = serializers.CharField(
        allow_null=True, help_text="The Anchors contract holding the root."
    )
    chain_id = serializers.IntegerField(allow_null=True)

    def to_representation(self, head: HeadProof) -> dict[str, Any]:
        return {
            "seq": head.seq,
            "head_hash": _hex(head.head_hash),
            "leaf_hash": _hex(head.leaf_hash),
            "leaf_index": head.leaf_index,
            "proof": [{"side": side, "hash": _hex(sibling)} for side, sibling in head.path],
            "root": head.root,
            "batch_id": head.batch_id,
            "head_count": head.head_count,
            "tx_hash": head.tx_hash,
            "block_number": head.block_number,
            "anchored_at": head.anchored_at.isoformat() if head.anchored_at else None,
            "contract_address": head.contract_address,
            "chain_id": head.chain_id,
        }


class AccessLogProofOut(serializers.Serializer):
    patient = serializers.CharField(help_text="The patient's checksummed address (the leaf's 20 bytes).")
    entries = ProofEntryOut(many=True, help_text="Every entry of the patient's chain, oldest first.")
    anchor = HeadProofOut(
        allow_null=True, help_text="The latest anchored head's proof; null before the first anchor."
    )
    rpc_url = serializers.CharField(
        allow_blank=True,
        help_text="A JSON-RPC URL of the chain that a browser may read the root from (empty when the "
        "operator publishes none; any node of the same chain gives the same answer).",
    )

    def to_representation(self, proof: AccessLogProof) -> dict[str, Any]:
        return {
            "patient": proof.patient_address,
            "entries": ProofEntryOut(proof.entries, many=True).data,
            "anchor": HeadProofOut(proof.anchor).data if proof.anchor else None,
            "rpc_url": proof.rpc_url,
        }
