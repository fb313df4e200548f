"""Anchoring records in batches: the records not yet in a batch go, oldest first, into one Merkle tree whose
root travels through the outbox as ONE "anchor.record_root" item; each record keeps its position and proof,
and the indexed RecordRootAnchored event (ehr.anchor_handlers) marks the batch anchored.

Leaf and tree encoding (fixed; `open_record`, `verify_records` and any outside auditor recompute it):
    leaf  = sha256(0x00 || record id (the UUID's 16 bytes) || patient address (20 bytes) || digest (32 bytes))
    node  = sha256(0x01 || left || right)
where digest is the SHA-256 of the record's sealed bytes. Leaves are in batch order (records by created_at,
then id); a record's index is its `anchor_position`. The tree is the access log's (access.audit.anchoring):
a level with an odd count carries its last node up unchanged, one leaf is its own root, and the 0x00/0x01
prefixes keep a leaf from ever being read as an inner node. A stored proof is the sibling path from the
leaf up: per step one byte b"L" or b"R" (the side the sibling is on), then the 32-byte sibling.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contracts import outbox
from contracts.models import OutboxItem
from contracts.relayer_kinds import RecordRootItem
from ehr.models import Record, RecordAnchorBatch, RecordBatchStatus

PROOF_STEP = 33
# A run of the periodic task stops after this many batches; the next run takes the rest.
MAX_BATCHES_PER_RUN = 100


class BatchConflict(RuntimeError):
    """Another batcher claimed some of the same records first; this batch is rolled back (retry later)."""


def leaf_hash(*, record_id: uuid.UUID, patient_address: str, digest: str) -> bytes:
    """The leaf of one record: its id, its patient and the SHA-256 (hex) of its sealed bytes."""
    return hashlib.sha256(
        b"\x00" + record_id.bytes + bytes.fromhex(patient_address.removeprefix("0x")) + bytes.fromhex(digest)
    ).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root_and_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """The root over `leaves` and every leaf's encoded proof, in one pass over the tree (n log n hashes)."""
    if not leaves:
        raise ValueError("a Merkle root needs at least one leaf")
    proofs = [bytearray() for _ in leaves]
    # members[i] = the leaf indexes under node i of the current level
    level, members = list(leaves), [[i] for i in range(len(leaves))]
    while len(level) > 1:
        next_level, next_members = [], []
        for i in range(0, len(level) - 1, 2):
            left, right = level[i], level[i + 1]
            for leaf in members[i]:
                proofs[leaf] += b"R" + right
            for leaf in members[i + 1]:
                proofs[leaf] += b"L" + left
            next_level.append(_node(left, right))
            next_members.append(members[i] + members[i + 1])
        if len(level) % 2:
            next_level.append(level[-1])
            next_members.append(members[-1])
        level, members = next_level, next_members
    return level[0], [bytes(proof) for proof in proofs]


def root_from_proof(leaf: bytes, proof: bytes) -> bytes | None:
    """The root that `proof` leads to from `leaf`; None if the proof is malformed."""
    if len(proof) % PROOF_STEP:
        return None
    current = leaf
    for start in range(0, len(proof), PROOF_STEP):
        side, sibling = proof[start : start + 1], proof[start + 1 : start + PROOF_STEP]
        if side == b"L":
            current = _node(sibling, current)
        elif side == b"R":
            current = _node(current, sibling)
        else:
            return None
    return current


def record_leaf(record: Record) -> bytes:
    return leaf_hash(record_id=record.id, patient_address=record.patient_address, digest=record.digest)


def proves_inclusion(record: Record, root_hex: str) -> bool:
    """Does the record's row (id, patient, digest) with its stored proof lead to `root_hex`?"""
    root = root_from_proof(record_leaf(record), bytes(record.anchor_proof))
    return root is not None and "0x" + root.hex() == root_hex.lower()


def anchored_root_of(record: Record) -> str | None:
    """The root the chain holds for the record's batch, as indexed; None while the record is not anchored."""
    if record.anchor_batch_id is None:
        return None
    batch = record.anchor_batch
    if batch is None or batch.status != RecordBatchStatus.ANCHORED:
        return None
    return batch.anchored_root or None


# --------------------------------------------------------------------------- the batcher


@transaction.atomic
def anchor_record_batch(*, max_records: int | None = None, min_records: int = 1) -> RecordAnchorBatch | None:
    """Put up to `max_records` records not yet in a batch (oldest first) into a new batch and queue its root.

    None when fewer than `min_records` wait. Raises BatchConflict if another batcher took some of the same
    records meanwhile (nothing is written then).
    """
    max_records = max_records or settings.RECORD_ANCHOR_BATCH_MAX
    _release_failed_batches()
    rows = list(
        Record.objects.select_for_update(skip_locked=True)
        .filter(anchor_batch__isnull=True)
        .order_by("created_at", "id")
        .values_list("id", "patient_address", "digest")[:max_records]
    )
    if not rows or len(rows) < min_records:
        return None
    leaves = [leaf_hash(record_id=rid, patient_address=addr, digest=digest) for rid, addr, digest in rows]
    root, proofs = merkle_root_and_proofs(leaves)
    batch = RecordAnchorBatch.objects.create(
        batch_id="0x" + secrets.token_hex(32), root="0x" + root.hex(), record_count=len(rows)
    )
    ids = [row[0] for row in rows]
    # The conditional update is the claim: a record another batcher took meanwhile is not counted.
    if Record.objects.filter(pk__in=ids, anchor_batch__isnull=True).update(anchor_batch=batch) != len(ids):
        raise BatchConflict("records were claimed by another batch; retry")
    _store_proofs(ids, proofs)
    batch.outbox = outbox.enqueue(
        RecordRootItem(root=batch.root, record_count=batch.record_count, batch_id=batch.batch_id)
    )
    batch.save(update_fields=["outbox"])
    return batch


def _store_proofs(ids: list[uuid.UUID], proofs: list[bytes]) -> None:
    """Each record's position and proof: one prepared UPDATE run per row (executemany). Django's bulk_update
    builds a CASE per field and took 0.7 s for 1,000 rows; this takes a few ms."""
    meta = Record._meta
    columns = {field.name: field.column for field in meta.concrete_fields}
    position, proof, pk = columns["anchor_position"], columns["anchor_proof"], columns["id"]
    sql = f"UPDATE {meta.db_table} SET {position} = %s, {proof} = %s WHERE {pk} = %s"  # noqa: S608 - names
    prepare_pk = meta.pk.get_db_prep_value
    rows = [
        (index, proof_bytes, prepare_pk(rid, connection))
        for index, (rid, proof_bytes) in enumerate(zip(ids, proofs, strict=True))
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _release_failed_batches() -> None:
    """A batch whose outbox item failed for good gives its records back, so a later batch anchors them."""
    failed = RecordAnchorBatch.objects.filter(
        status=RecordBatchStatus.QUEUED, outbox__status=OutboxItem.Status.FAILED
    )
    for batch in failed:
        batch.records.update(anchor_batch=None, anchor_position=None, anchor_proof=b"")
        batch.status = RecordBatchStatus.FAILED
        batch.save(update_fields=["status"])


def anchor_waiting_records(
    *, max_records: int | None = None, min_records: int | None = None, max_wait_s: float | None = None
) -> list[RecordAnchorBatch]:
    """Batch the records waiting: full batches always; a partial one only once `min_records` wait or the
    oldest has waited `max_wait_s` (so a quiet hour does not anchor records one by one). The periodic task.
    """
    min_records = settings.RECORD_ANCHOR_BATCH_MIN if min_records is None else min_records
    max_wait = timedelta(seconds=settings.RECORD_ANCHOR_MAX_WAIT_S if max_wait_s is None else max_wait_s)
    batches: list[RecordAnchorBatch] = []
    while len(batches) < MAX_BATCHES_PER_RUN:
        oldest = oldest_unbatched_at()
        if oldest is None:
            break
        overdue = timezone.now() - oldest >= max_wait
        batch = anchor_record_batch(max_records=max_records, min_records=1 if overdue else min_records)
        if batch is None:
            break
        batches.append(batch)
    return batches


def anchor_all_records(*, max_records: int | None = None) -> list[RecordAnchorBatch]:
    """Batch every record waiting now, whatever the batch sizes (the demo, `anchor_records`, tests)."""
    return anchor_waiting_records(max_records=max_records, min_records=1, max_wait_s=0)


# --------------------------------------------------------------------------- reads


def oldest_unbatched_at() -> datetime | None:
    return (
        Record.objects.filter(anchor_batch__isnull=True)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


@dataclass(frozen=True)
class Backlog:
    """Records whose digest the chain does not hold yet: not batched, or batched and waiting."""

    unbatched: int
    waiting: int  # in a batch whose root is not indexed yet
    oldest_created_at: datetime | None

    @property
    def total(self) -> int:
        return self.unbatched + self.waiting

    def oldest_age_s(self) -> float | None:
        if self.oldest_created_at is None:
            return None
        return (timezone.now() - self.oldest_created_at).total_seconds()


def anchor_backlog() -> Backlog:
    not_anchored = Record.objects.exclude(anchor_batch__status=RecordBatchStatus.ANCHORED)
    oldest = not_anchored.order_by("created_at").values_list("created_at", flat=True).first()
    unbatched = Record.objects.filter(anchor_batch__isnull=True).count()
    return Backlog(unbatched=unbatched, waiting=not_anchored.count() - unbatched, oldest_created_at=oldest)
