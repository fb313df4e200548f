"""What an independent verifier needs to check a patient's access log without trusting the server: every
entry's canonical bytes with the hash before it (so the hash chain can be recomputed from the genesis), and
the Merkle proof of the latest anchored head to the root the Anchors contract holds, with the batch id, the
anchoring transaction and block, the contract address and chain id, and a JSON-RPC URL to read it from.

Wire rules (the verifier recomputes them; nothing here is to be believed):
    entry_hash(n) = sha256(prev_hash(n) || canonical(n)), prev_hash(1) = 32 zero bytes     (log.py)
    leaf = sha256(0x00 || patient (20 bytes) || seq (uint64 big-endian) || head hash)     (anchoring.py)
    node = sha256(0x01 || left || right); proof step ("L", s) is node(s, cur), ("R", s) node(cur, s)
    root = Anchors.auditRootOf(batch_id), read from the chain
The hashing is access/audit/log.py's and anchoring.py's, reused, never rewritten here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from access.audit.anchoring import Leaf, merkle_proof, sort_leaves
from access.audit.log import GENESIS_HASH
from access.audit.selectors import access_log_of
from access.models import AccessLogEntry, AuditAnchorBatch, AuditAnchorLeaf, AuditBatchStatus, User
from contracts import client
from contracts.models import ChainEvent, Deployment
from healthhash.portal import public_rpc_url

_CHUNK = 5_000


@dataclass(frozen=True)
class ProofEntry:
    """One entry as stored: the bytes its hash commits to, the hash before it, and its own hash."""

    seq: int
    canonical: bytes
    prev_hash: bytes
    entry_hash: bytes


@dataclass(frozen=True)
class HeadProof:
    """The latest anchored head of the patient's chain and its path to the anchored root."""

    seq: int
    head_hash: bytes
    leaf_hash: bytes
    leaf_index: int
    path: list[tuple[str, bytes]]
    root: str
    batch_id: str
    head_count: int
    tx_hash: str
    block_number: int | None
    anchored_at: dt.datetime | None
    contract_address: str | None
    chain_id: int | None


@dataclass(frozen=True)
class AccessLogProof:
    patient_address: str
    entries: list[ProofEntry]
    anchor: HeadProof | None
    rpc_url: str


def access_log_proof(*, patient: User) -> AccessLogProof:
    """The patient's own log with its proof (only patients have one: others get Forbidden)."""
    entries = list(_entries(access_log_of(patient=patient)))
    address = patient.eth_address or ""
    return AccessLogProof(
        patient_address=address, entries=entries, anchor=latest_head_proof(address), rpc_url=public_rpc_url()
    )


def _entries(log: QuerySet[AccessLogEntry]) -> Iterator[ProofEntry]:
    """Oldest first; prev_hash is the stored hash of the entry before (the chain continues past a gap from
    the last entry that exists, as the writer does, so a gap shows as a seq jump, not a broken link)."""
    rows = log.order_by("seq").values_list("seq", "canonical", "entry_hash")
    prev = GENESIS_HASH
    for seq, canonical, entry_hash in rows.iterator(chunk_size=_CHUNK):
        stored = bytes(entry_hash)
        yield ProofEntry(seq=seq, canonical=bytes(canonical), prev_hash=prev, entry_hash=stored)
        prev = stored


def latest_head_proof(patient_address: str) -> HeadProof | None:
    """The proof of the patient's highest head in a batch indexed as anchored; None before the first."""
    mine = (
        AuditAnchorLeaf.objects.filter(
            patient_address=patient_address, batch__status=AuditBatchStatus.ANCHORED
        )
        .select_related("batch")
        .order_by("-seq")
        .first()
    )
    if mine is None:
        return None
    batch = mine.batch
    rows = batch.leaves.values_list("patient_address", "seq", "head_hash")
    leaves = sort_leaves(Leaf(patient, seq, bytes(head)) for patient, seq, head in rows)
    index = next(
        i for i, leaf in enumerate(leaves) if (leaf.patient_address, leaf.seq) == (patient_address, mine.seq)
    )
    digests = [leaf.digest() for leaf in leaves]
    contract_address, chain_id = _anchoring_contract(batch)
    return HeadProof(
        seq=mine.seq,
        head_hash=bytes(mine.head_hash),
        leaf_hash=digests[index],
        leaf_index=index,
        path=merkle_proof(digests, index),
        root=batch.root,
        batch_id=batch.batch_id,
        head_count=batch.head_count,
        tx_hash=batch.anchored_tx_hash,
        block_number=batch.anchored_block,
        anchored_at=batch.anchored_at,
        contract_address=contract_address,
        chain_id=chain_id,
    )


def _anchoring_contract(batch: AuditAnchorBatch) -> tuple[str | None, int | None]:
    """The contract that emitted the batch's AuditRootAnchored event (from the indexed log), else the Anchors
    deployment of the chain in use (a redeployed Anchors keeps the old roots at the old address)."""
    events = ChainEvent.objects.filter(
        contract="Anchors", event="AuditRootAnchored", tx_hash__iexact=batch.anchored_tx_hash
    ).values_list("address", "chain_id", "args")
    for address, chain_id, args in events:
        if str(args.get("batchId", "")).lower() == batch.batch_id.lower():
            return address, int(chain_id)
    try:
        chain_id = client.chain_id()
    except client.ChainUnavailable:
        return None, None
    row = (
        Deployment.objects.filter(chain_id=chain_id, name="Anchors").values_list("address", flat=True).first()
    )
    return row, chain_id
