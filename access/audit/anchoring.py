"""Anchoring the access log: the chain heads changed since the last batch go into one Merkle root,
sent through the outbox as ONE "anchor.audit_root" item; the indexed AuditRootAnchored event marks
the batch anchored.

Leaf and tree encoding (fixed; access/audit/verify.py and any outside auditor recompute it):
    leaf  = sha256(0x00 || patient address (20 bytes) || seq (uint64 big-endian) || head hash (32 bytes))
    node  = sha256(0x01 || left || right)
Leaves are sorted by patient address (bytes; a batch holds one head per patient). A level with an odd
count carries its last node up unchanged. One leaf is its own root. The 0x00/0x01 prefixes keep a
leaf from ever being read as an inner node. The batch id carries the batch's highest seq and a filter of
its patients (access/audit/batch_ids.py): after a restore, the chain's event is all that is left of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from eth_utils import keccak

from access.audit.batch_ids import new_batch_id
from access.models import AuditAnchorBatch, AuditAnchorLeaf, AuditBatchStatus, AuditChainHead, AuditLostBatch
from contracts import client, events, indexer, outbox
from contracts.models import Deployment, IndexerCursor, OutboxItem
from contracts.relayer_kinds import AuditRootItem

logger = logging.getLogger(__name__)
MAX_HEADS_PER_BATCH = 10_000
_AUDIT_ROOT_TOPIC = "0x" + keccak(text="AuditRootAnchored(bytes32,bytes32,uint32)").hex()


@dataclass(frozen=True)
class Leaf:
    patient_address: str
    seq: int
    head_hash: bytes

    def digest(self) -> bytes:
        return leaf_hash(self.patient_address, self.seq, self.head_hash)


def leaf_hash(patient_address: str, seq: int, head_hash: bytes) -> bytes:
    return hashlib.sha256(
        b"\x00" + bytes.fromhex(patient_address[2:]) + int(seq).to_bytes(8, "big") + bytes(head_hash)
    ).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def sort_leaves(leaves: Iterable[Leaf]) -> list[Leaf]:
    return sorted(leaves, key=lambda leaf: (bytes.fromhex(leaf.patient_address[2:]), leaf.seq))


def merkle_root(leaf_digests: Sequence[bytes]) -> bytes:
    if not leaf_digests:
        raise ValueError("a Merkle root needs at least one leaf")
    level = list(leaf_digests)
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(leaf_digests: Sequence[bytes], index: int) -> list[tuple[str, bytes]]:
    """The sibling path of leaf `index`: [("L"|"R", sibling)], for showing one head's inclusion."""
    proof: list[tuple[str, bytes]] = []
    level = list(leaf_digests)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(("L" if sibling < index else "R", level[sibling]))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return proof


def verify_proof(leaf_digest: bytes, proof: Sequence[tuple[str, bytes]], root: bytes) -> bool:
    current = leaf_digest
    for side, sibling in proof:
        current = _node(sibling, current) if side == "L" else _node(current, sibling)
    return current == root


@transaction.atomic
def anchor_audit_heads(*, max_heads: int = MAX_HEADS_PER_BATCH) -> AuditAnchorBatch | None:
    """Put the heads changed since their last batch into a new batch and queue its root; None if none changed.

    Heads are locked (skip_locked) so two runs never take the same head, and a writer busy on one patient
    simply leaves that head for the next run.
    """
    _release_failed_batches()
    heads = list(
        AuditChainHead.objects.select_for_update(skip_locked=True)
        .filter(seq__gt=F("anchored_seq"))
        .order_by("patient_address")[:max_heads]
    )
    if not heads:
        return None
    leaves = sort_leaves(Leaf(h.patient_address, h.seq, bytes(h.head_hash)) for h in heads)
    root = "0x" + merkle_root([leaf.digest() for leaf in leaves]).hex()
    batch_id = new_batch_id((leaf.patient_address, leaf.seq) for leaf in leaves)  # what survives a restore
    batch = AuditAnchorBatch.objects.create(batch_id=batch_id, root=root, head_count=len(leaves))
    AuditAnchorLeaf.objects.bulk_create(
        [
            AuditAnchorLeaf(
                batch=batch,
                position=i,
                patient_address=leaf.patient_address,
                seq=leaf.seq,
                head_hash=leaf.head_hash,
            )
            for i, leaf in enumerate(leaves)
        ],
        batch_size=2_000,
    )
    for head in heads:
        AuditChainHead.objects.filter(pk=head.pk).update(anchored_seq=head.seq)
    batch.outbox = outbox.enqueue(AuditRootItem(root=root, head_count=len(leaves), batch_id=batch_id))
    batch.save(update_fields=["outbox"])
    return batch


def _release_failed_batches() -> None:
    """A batch whose outbox item failed for good gives its heads back, so the next batch re-anchors them."""
    failed = list(
        AuditAnchorBatch.objects.filter(
            status=AuditBatchStatus.QUEUED, outbox__status=OutboxItem.Status.FAILED
        )
    )
    for batch in failed:
        for patient, seq in batch.leaves.values_list("patient_address", "seq"):
            AuditChainHead.objects.filter(patient_address=patient, anchored_seq=seq).update(
                anchored_seq=seq - 1
            )
        batch.status = AuditBatchStatus.FAILED
        batch.save(update_fields=["status"])


def on_audit_root_anchored(events: list[Any]) -> None:
    """Indexer handler: the batch is anchored once its event is indexed (the root is compared by verify).

    An event for a batch this database does not hold (restored from an older backup) is kept as an
    AuditLostBatch: the log's writer then skips the seqs its id says it may commit to (access/audit/log.py).
    """
    for event in events:
        batch_id = str(event.args["batchId"]).lower()
        updated = AuditAnchorBatch.objects.filter(batch_id=batch_id).update(
            status=AuditBatchStatus.ANCHORED,
            anchored_block=event.block_number,
            anchored_tx_hash=event.tx_hash,
            anchored_at=event.block_time or timezone.now(),
        )
        if not updated:
            logger.warning(
                "audit root %s anchored in block %s: batch unknown here", batch_id, event.block_number
            )
            AuditLostBatch.objects.update_or_create(
                batch_id=batch_id,
                defaults={
                    "root": str(event.args["root"]).lower(),
                    "head_count": int(event.args["headCount"]),
                    "block_number": event.block_number,
                    "tx_hash": event.tx_hash,
                    "anchored_at": event.block_time,
                },
            )


def rewind_from(block_number: int) -> None:
    """A re-org dropped the block that anchored a batch: it waits for the relayer's re-send again."""
    AuditLostBatch.objects.filter(block_number__gte=block_number).delete()  # re-indexed if still there
    AuditAnchorBatch.objects.filter(anchored_block__gte=block_number).update(
        status=AuditBatchStatus.QUEUED, anchored_block=None, anchored_tx_hash="", anchored_at=None
    )


def register_handlers() -> None:
    """Called from access.consent.chain_handlers.register() (AppConfig.ready)."""
    indexer.register_handler("Anchors", "AuditRootAnchored", on_audit_root_anchored)
    indexer.register_rewind(rewind_from)


def anchored_seq_of(patient_address: str) -> int:
    """The highest seq of this patient's chain covered by a root indexed from the chain (0 if none)."""
    leaf = (
        AuditAnchorLeaf.objects.filter(
            patient_address=patient_address, batch__status=AuditBatchStatus.ANCHORED
        )
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return int(leaf or 0)


@dataclass(frozen=True)
class AnchoredRoot:
    """One AuditRootAnchored event as the node returns it: the chain's own commitment to a batch."""

    batch_id: str  # 0x-hex, lower case
    root: str  # 0x-hex, lower case
    head_count: int
    block_number: int
    tx_hash: str


def audit_roots_on_chain(*, from_block: int | None = None, head: int | None = None) -> list[AnchoredRoot]:
    """Every AuditRootAnchored event of the deployed Anchors contract (from `from_block`, default its
    deployment, to `head`, default the latest block), read from the node with eth_getLogs in ranges of
    at most INDEXER_MAX_BLOCK_RANGE (not from the indexed ChainEvent copy, which a database restore rolls
    back with everything else).

    Raises ChainUnavailable when no node answers, ChainRpcError when it refuses even a one-block range,
    and ContractNotDeployed when Anchors is not deployed.
    """
    deployment = Deployment.objects.filter(chain_id=client.chain_id(), name="Anchors").first()
    if deployment is None:
        raise client.ContractNotDeployed("Anchors is not deployed on this chain")
    head = client.latest_block() if head is None else head
    start = deployment.block_number if from_block is None else max(from_block, deployment.block_number)
    size = max(1, settings.INDEXER_MAX_BLOCK_RANGE)
    roots: list[AnchoredRoot] = []
    while start <= head:
        end = min(start + size - 1, head)
        query = {
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "address": deployment.address,
            "topics": [_AUDIT_ROOT_TOPIC],
        }
        try:
            raw_logs = client.rpc("eth_getLogs", [query])
        except client.ChainRpcError:
            if size == 1:
                raise
            size = max(1, size // 4)  # the node refused the range (too many results): shrink and retry
            continue
        for raw in raw_logs:
            decoded = events.decode_log(raw, "Anchors")
            if decoded is None or raw.get("removed"):
                continue
            roots.append(
                AnchoredRoot(
                    batch_id=str(decoded.args["batchId"]).lower(),
                    root=str(decoded.args["root"]).lower(),
                    head_count=int(decoded.args["headCount"]),
                    block_number=decoded.block_number,
                    tx_hash=decoded.tx_hash,
                )
            )
        start = end + 1
    return roots


# --- anchored batches the index has not read yet (a database restored a few blocks back) ----------------

# The writer learns them at most this often per process; between two looks a restore under a running
# process goes unseen (the README's "After a restore" stops the services first).
UNREAD_ROOTS_CACHE_S = 1.0
_unread_checked_until: dict[str, float] = {}  # rpc url -> monotonic time of the next look


def learn_unread_audit_roots() -> int:
    """Keep, as AuditLostBatch rows, the AuditRootAnchored events past the indexer's cursor whose batch this
    database does not hold; returns how many were new.

    `indexer.require_index_current` refuses writes while the index trails the chain by more than
    MAX_INDEX_LAG_BLOCKS; a restore younger than that passes it, and before this look the writer could hand
    out a seq that an anchored batch lost with the restore commits to. Every batch this database anchors has
    its row before its transaction is sent, so outside a restore an unknown batch never shows up here. The
    rows are what the indexer's handler keeps for the same events (it fills in the block time later). Node
    down or nothing indexed: nothing can be learnt and nothing is kept, as before.
    """
    url = client.rpc_url()
    if _unread_checked_until.get(url, 0.0) > time.monotonic():
        return 0
    try:
        chain = client.chain_id()
        cursor = IndexerCursor.objects.filter(chain_id=chain).values_list("last_block", flat=True).first()
        head = client.latest_block()
        if cursor is None or head <= cursor:
            roots = []
        else:
            roots = audit_roots_on_chain(from_block=cursor + 1, head=head)
    except (client.ChainUnavailable, client.ContractNotDeployed):
        _unread_checked_until[url] = time.monotonic() + UNREAD_ROOTS_CACHE_S  # not a node call per write
        return 0
    except client.ChainRpcError as exc:  # the node will not say what those blocks hold: assume the worst
        raise indexer.IndexBehind(
            f"the chain's audit anchors past block {cursor} could not be read ({exc}); "
            "access-log writes resume once the indexer has caught up"
        ) from exc
    ids = {root.batch_id for root in roots}
    known = set(AuditAnchorBatch.objects.filter(batch_id__in=ids).values_list("batch_id", flat=True))
    known |= set(AuditLostBatch.objects.filter(batch_id__in=ids).values_list("batch_id", flat=True))
    learnt = 0
    for root in roots:
        if root.batch_id in known:
            continue
        logger.warning(
            "audit root %s anchored in block %s, not indexed yet: batch unknown here (database restored?)",
            root.batch_id,
            root.block_number,
        )
        known.add(root.batch_id)
        learnt += int(remember_lost_batch(root, anchored_at=None))
    _unread_checked_until[url] = time.monotonic() + UNREAD_ROOTS_CACHE_S
    return learnt


def remember_lost_batch(lost: AnchoredRoot, *, anchored_at: Any) -> bool:
    """Keep an anchored batch this database does not hold as an AuditLostBatch (idempotent); True if new.
    The writer then skips the seqs its id says it may commit to (access/audit/log.py)."""
    _, created = AuditLostBatch.objects.get_or_create(
        batch_id=lost.batch_id,
        defaults={
            "root": lost.root,
            "head_count": lost.head_count,
            "block_number": lost.block_number,
            "tx_hash": lost.tx_hash,
            "anchored_at": anchored_at,
        },
    )
    return created


def forget_unread_roots_state() -> None:
    """Look again on the next write (a test restored the database under this process)."""
    _unread_checked_until.clear()
