"""A database restored from a backup (issue 16): the access log's rollback is reported from the chain itself,
and a sequence number that went into an anchored batch is never handed out again.

The restore is played on the real stack: entries are written and anchored through the outbox to anvil, then
the rows written after the "backup" are removed as a restore would (the triggers dropped first, as only a
restore or a tamperer can), while the chain keeps the roots.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from web3.contract import Contract

from access.audit import anchoring
from access.audit.anchoring import anchor_audit_heads
from access.audit.log import AccessEvent, record_accesses
from access.audit.verify import verify_audit
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditAnchorBatch,
    AuditBatchStatus,
    AuditChainHead,
    AuditLostBatch,
    LegalBasis,
    User,
)
from contracts.drain import drain_outbox
from contracts.models import ChainEvent, IndexerCursor
from tests.conftest import Personas, address_of
from tests.fixtures.audit_log import tampering_with_the_log
from tests.fixtures.chain import transact


def _events(patient_address: str, actor: User, first: int, n: int) -> list[AccessEvent]:
    return [
        AccessEvent(
            patient_address=patient_address,
            actor=actor,
            actor_address=address_of(actor),
            action=AccessAction.OPEN,
            purpose=AccessPurpose.TREATMENT,
            outcome=AccessOutcome.ALLOWED,
            legal_basis=LegalBasis(f"consent:x@{i}"),
            record_id=f"rec-{i}",
        )
        for i in range(first, first + n)
    ]


@pytest.fixture
def alice(personas: Personas, own_anchors: Contract) -> str:
    """Alice's entries 1-5, anchored on chain: the state of the backup."""
    record_accesses(_events(address_of(personas.alice), personas.bob, 1, 5))
    anchor_audit_heads()
    drain_outbox()
    return address_of(personas.alice)


def _anchor_6_to_8(personas: Personas, alice: str) -> AuditAnchorBatch:
    record_accesses(_events(alice, personas.bob, 6, 3))
    batch = anchor_audit_heads()
    assert batch is not None
    drain_outbox()
    batch.refresh_from_db()
    assert batch.status == AuditBatchStatus.ANCHORED
    return batch


def _restore_entries_to_seq_5(alice: str) -> None:
    fifth = AccessLogEntry.objects.get(patient_address=alice, seq=5)
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=alice, seq__gt=5).delete()
    AuditChainHead.objects.filter(patient_address=alice).update(
        seq=5, head_hash=bytes(fifth.entry_hash), anchored_seq=5
    )


def test_a_batch_lost_with_the_restore_is_reported_from_the_chain(personas: Personas, alice: str) -> None:
    batch = _anchor_6_to_8(personas, alice)
    _restore_entries_to_seq_5(alice)
    # The backup predates the batch: its rows and its indexed event are gone with the restore too.
    batch.leaves.all().delete()
    batch.delete()
    ChainEvent.objects.filter(event="AuditRootAnchored", args__batchId=batch.batch_id).delete()
    report = verify_audit()
    assert [(b.kind, b.batch_id) for b in report.breaks] == [("anchored_batch_unknown", batch.batch_id)]
    assert batch.root in report.breaks[0].expected and "1 heads" in report.breaks[0].expected
    assert any("does not know" in note for note in report.notes)
    # Writing on does not make the loss go away: it stays reported. verify_audit kept the lost batch, so the
    # new entry skips the seqs its id says it may hold (6-8), and the gap shows (see test_audit_rollback.py).
    (entry,) = record_accesses(_events(alice, personas.bob, 9, 1))
    assert entry.seq == 9
    assert sorted(b.kind for b in verify_audit().breaks) == ["anchored_batch_unknown", "missing_entry"]


def test_a_restore_a_few_blocks_old_learns_the_lost_batch_from_the_chain_before_writing(
    personas: Personas, alice: str
) -> None:
    """The backup is only a few blocks older than the batch: the index guard (MAX_INDEX_LAG_BLOCKS) cannot
    tell that from a slow indexer pass, no verify_audit has run and the indexer has not read the batch's
    event. The writer reads the anchors past the cursor itself and skips the lost batch's seqs."""
    cursor_at_backup = IndexerCursor.objects.get().last_block
    batch = _anchor_6_to_8(personas, alice)
    _restore_entries_to_seq_5(alice)
    batch.leaves.all().delete()
    batch.delete()
    ChainEvent.objects.filter(event="AuditRootAnchored", args__batchId=batch.batch_id).delete()
    IndexerCursor.objects.update(last_block=cursor_at_backup)  # the restored cursor: before the anchor
    anchoring.forget_unread_roots_state()
    assert not AuditLostBatch.objects.exists()
    (entry,) = record_accesses(_events(alice, personas.bob, 9, 1))
    assert entry.seq == 9  # not 6: the lost root on chain may commit to seqs 6-8 of Alice's
    lost = AuditLostBatch.objects.get()
    assert (lost.batch_id, lost.root) == (batch.batch_id, batch.root)
    # Once learnt, the next look (cached or not) keeps the one row; the indexer fills in the block time.
    anchoring.forget_unread_roots_state()
    assert anchoring.learn_unread_audit_roots() == 0
    assert AuditLostBatch.objects.count() == 1


def test_the_writer_learns_nothing_from_batches_it_anchored_itself(personas: Personas, alice: str) -> None:
    cursor_before = IndexerCursor.objects.get().last_block
    _anchor_6_to_8(personas, alice)
    IndexerCursor.objects.update(last_block=cursor_before)  # its own batch, not indexed yet
    anchoring.forget_unread_roots_state()
    assert anchoring.learn_unread_audit_roots() == 0
    (entry,) = record_accesses(_events(alice, personas.bob, 9, 1))
    assert entry.seq == 9
    assert not AuditLostBatch.objects.exists()


def test_an_anchored_head_the_database_no_longer_holds_is_named_by_patient_and_seq(
    personas: Personas, alice: str
) -> None:
    batch = _anchor_6_to_8(personas, alice)
    _restore_entries_to_seq_5(alice)  # the batch's rows survived (restored from a later copy of them)
    report = verify_audit()
    assert sorted((b.kind, b.patient, b.seq, b.batch_id) for b in report.breaks) == [
        ("anchored_head_lost", alice, 8, batch.batch_id),
        ("head_behind_anchor", alice, 8, None),
    ]


def test_a_sequence_number_in_an_anchored_batch_is_never_handed_out_again(
    personas: Personas, alice: str
) -> None:
    batch = _anchor_6_to_8(personas, alice)
    lost_hash = bytes(batch.leaves.get().head_hash)
    _restore_entries_to_seq_5(alice)
    (entry,) = record_accesses(_events(alice, personas.bob, 100, 1))
    assert entry.seq == 9  # not 6, 7 or 8: seq 8 is on chain with another entry's hash
    assert AuditChainHead.objects.get(patient_address=alice).seq == 9
    fifth = AccessLogEntry.objects.get(patient_address=alice, seq=5)
    assert (
        bytes(entry.entry_hash) == hashlib.sha256(bytes(fifth.entry_hash) + bytes(entry.canonical)).digest()
    )
    assert bytes(entry.entry_hash) != lost_hash
    report = verify_audit()
    # The gap stays reported for good; the entry written after it verifies (no hash_mismatch at 9).
    assert sorted((b.kind, b.seq) for b in report.breaks) == [("anchored_head_lost", 8), ("missing_entry", 6)]
    assert "seq 9 follows seq 5" in next(b.found for b in report.breaks if b.kind == "missing_entry")


def test_an_indexed_anchor_the_node_does_not_have_is_reported(personas: Personas, alice: str) -> None:
    record_accesses(_events(alice, personas.bob, 6, 1))
    batch = anchor_audit_heads()  # queued, never sent
    assert batch is not None
    AuditAnchorBatch.objects.filter(pk=batch.pk).update(status=AuditBatchStatus.ANCHORED, anchored_block=1)
    first = ChainEvent.objects.filter(event="AuditRootAnchored").first()
    assert first is not None
    ChainEvent.objects.create(
        chain_id=first.chain_id,
        contract="Anchors",
        address=first.address,
        event="AuditRootAnchored",
        args={"batchId": batch.batch_id, "root": batch.root, "headCount": 1},
        block_number=first.block_number,
        block_hash=first.block_hash,
        tx_hash="0x" + os.urandom(32).hex(),
        log_index=0,
    )
    kinds = sorted(b.kind for b in verify_audit().breaks)
    assert kinds == ["anchor_missing", "indexed_anchor_not_on_chain"]


def test_a_root_on_chain_for_a_batch_nobody_recorded_is_reported(
    personas: Personas, alice: str, own_anchors: Contract
) -> None:
    batch_id, root = os.urandom(32), os.urandom(32)
    transact(
        own_anchors.functions.anchorAuditRoot(root, 3, batch_id), personas.chain.accounts.relayer.address
    )
    (found,) = verify_audit().breaks
    assert (found.kind, found.batch_id) == ("anchored_batch_unknown", "0x" + batch_id.hex())
    assert f"the 3 heads under root 0x{root.hex()}" in found.expected
