"""The anchor half of `verify_audit`: every batch of anchored heads against the entries, and every root
against the chain itself.

The roots are read from the node (AuditRootAnchored logs of the deployed Anchors contract, through
contracts.client), not only from the indexed ChainEvent copy: a database restored from a backup rolls the
copy back together with the entries, and the chain is then the only witness of what was anchored. So:
a root on chain for a batch the database does not know is a break (its heads can no longer be proven), as
is an anchored head the database no longer holds, or holds with another hash; an indexed event the node
does not have is a break too. With no node, the indexed copy is used and the report says so (lost batches
then come from the AuditLostBatch rows kept before). Lost batches are access/audit/verify_lost.py's part.
Each anchor break names the root's block and tx.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from access.audit.anchoring import AnchoredRoot, Leaf, audit_roots_on_chain, merkle_root, sort_leaves
from access.audit.verify_lost import check_lost_batches, kept_lost_batches
from access.audit.verify_report import AuditBreak, AuditReport
from access.models import AuditAnchorBatch, AuditAnchorLeaf, AuditBatchStatus
from contracts import client
from contracts.models import ChainEvent

CHUNK = 20_000


@dataclass
class AnchorView:
    """What is known of the anchors before the entries are walked (read first: each later read of the
    database is then a superset, so a batch anchored meanwhile never shows up as unknown)."""

    batches: list[tuple[AuditAnchorBatch, list[Leaf]]]
    on_chain: dict[str, AnchoredRoot] | None  # None: the node could not be read
    anchors_address: str | None

    @property
    def wanted(self) -> set[tuple[str, int]]:
        return {(leaf.patient_address, leaf.seq) for _, leaves in self.batches for leaf in leaves}

    def is_anchored(self, batch: AuditAnchorBatch) -> bool:
        if self.on_chain is None:
            return batch.status == AuditBatchStatus.ANCHORED
        return batch.batch_id.lower() in self.on_chain

    def proven_seqs(self) -> dict[str, int]:
        """Per patient, the highest seq a root on the chain covers (0 when none)."""
        proven: dict[str, int] = defaultdict(int)
        for batch, leaves in self.batches:
            if self.is_anchored(batch):
                for leaf in leaves:
                    proven[leaf.patient_address] = max(proven[leaf.patient_address], leaf.seq)
        return proven


def load_anchors(report: AuditReport) -> AnchorView:
    on_chain, address = _read_chain(report)
    return AnchorView(batches=_batches(), on_chain=on_chain, anchors_address=address)


def _read_chain(report: AuditReport) -> tuple[dict[str, AnchoredRoot] | None, str | None]:
    try:
        roots = audit_roots_on_chain()
        address = client.deployment_address("Anchors")
    except (client.ChainUnavailable, client.ContractNotDeployed, client.ChainRpcError) as exc:
        report.notes.append(
            f"Anchored roots NOT read from the chain ({exc}): anchors were checked against the "
            "database's indexed copy only, which a restore rolls back with the entries."
        )
        return None, None
    report.chain_read = True
    return {root.batch_id: root for root in roots}, address


def _batches() -> list[tuple[AuditAnchorBatch, list[Leaf]]]:
    leaves: dict[Any, list[tuple[int, Leaf]]] = defaultdict(list)
    rows = AuditAnchorLeaf.objects.values_list("batch_id", "position", "patient_address", "seq", "head_hash")
    for batch_pk, position, patient, seq, head_hash in rows.iterator(chunk_size=CHUNK):
        leaves[batch_pk].append((position, Leaf(patient, seq, bytes(head_hash))))
    return [
        (batch, [leaf for _, leaf in sorted(leaves.get(batch.pk, []), key=lambda item: item[0])])
        for batch in AuditAnchorBatch.objects.all()
    ]


def _indexed_roots(address: str | None) -> dict[str, set[str]]:
    events = ChainEvent.objects.filter(contract="Anchors", event="AuditRootAnchored")
    if address is not None:
        events = events.filter(address__iexact=address)  # a redeployed Anchors' old events are history
    roots: dict[str, set[str]] = defaultdict(set)
    for args in events.values_list("args", flat=True):
        roots[str(args["batchId"]).lower()].add(str(args["root"]).lower())
    return roots


def check_anchors(report: AuditReport, view: AnchorView, found: dict[tuple[str, int], bytes]) -> None:
    """Every batch against the entries (`found`: stored hash per anchored (patient, seq)) and the chain."""
    indexed = _indexed_roots(view.anchors_address)
    for batch, leaves in view.batches:
        _check_batch(report, view, batch, leaves, found, indexed)
    known = {batch.batch_id.lower() for batch, _ in view.batches}
    if view.on_chain is None:
        unknown = [r for r in kept_lost_batches() if r.batch_id not in known]
    else:
        unknown = sorted((r for r in view.on_chain.values() if r.batch_id not in known), key=_block_order)
    check_lost_batches(report, unknown, from_chain=view.on_chain is not None)
    if view.on_chain is None:
        return
    for batch_id, roots in sorted(indexed.items()):
        chain_root = view.on_chain.get(batch_id)
        for root in sorted(roots):
            if chain_root is None or chain_root.root != root:
                report.breaks.append(
                    AuditBreak(
                        "indexed_anchor_not_on_chain",
                        None,
                        None,
                        f"AuditRootAnchored({batch_id}, {root}) on chain",
                        f"chain root {chain_root.root}" if chain_root else "no such event on chain",
                        batch_id,
                    )
                )


def _block_order(root: AnchoredRoot) -> tuple[int, str]:
    return root.block_number, root.batch_id


def _check_batch(
    report: AuditReport,
    view: AnchorView,
    batch: AuditAnchorBatch,
    leaves: list[Leaf],
    found: dict[tuple[str, int], bytes],
    indexed: dict[str, set[str]],
) -> None:
    chain_root = view.on_chain.get(batch.batch_id.lower()) if view.on_chain is not None else None
    block: int | None = chain_root.block_number if chain_root else batch.anchored_block
    tx_hash: str | None = chain_root.tx_hash if chain_root else batch.anchored_tx_hash or None

    def fail(kind: str, expected: str, got: str, leaf: Leaf | None = None) -> None:
        patient, seq = (leaf.patient_address, leaf.seq) if leaf else (None, None)
        report.breaks.append(AuditBreak(kind, patient, seq, expected, got, batch.batch_id, block, tx_hash))

    anchored = view.is_anchored(batch)
    if batch.status == AuditBatchStatus.FAILED and not anchored:
        return  # never reached the chain; its heads went into a later batch
    for leaf in leaves:
        stored = found.get((leaf.patient_address, leaf.seq))
        if stored is None:
            fail("anchored_head_lost", f"anchored head 0x{leaf.head_hash.hex()}", "no entry", leaf)
        elif stored != leaf.head_hash:
            fail("leaf_mismatch", f"anchored head 0x{leaf.head_hash.hex()}", f"entry 0x{stored.hex()}", leaf)
    recomputed = (
        "0x" + merkle_root([leaf.digest() for leaf in sort_leaves(leaves)]).hex() if leaves else "no leaves"
    )
    if recomputed != batch.root or len(leaves) != batch.head_count:
        fail(
            "root_mismatch",
            f"root {batch.root} over {batch.head_count} heads",
            f"root {recomputed} over {len(leaves)} heads",
        )
    if not anchored:
        if batch.status == AuditBatchStatus.ANCHORED:  # the database says anchored; the chain has no root
            fail("anchor_missing", f"AuditRootAnchored({batch.batch_id}) on chain", "no event")
        else:
            report.batches_pending += 1
        return
    report.batches_checked += 1
    report.heads_anchored += len(leaves)
    if chain_root is not None:
        if (chain_root.root, chain_root.head_count) != (batch.root.lower(), batch.head_count):
            fail(
                "anchor_root_mismatch",
                f"chain root {chain_root.root} over {chain_root.head_count} heads",
                f"batch root {batch.root} over {batch.head_count} heads",
            )
        return
    on_chain = indexed.get(batch.batch_id.lower())
    if not on_chain:
        fail("anchor_missing", f"AuditRootAnchored({batch.batch_id}) indexed", "no event")
    elif batch.root.lower() not in on_chain:
        fail("anchor_root_mismatch", f"chain root {sorted(on_chain)[0]}", f"batch root {batch.root}")
