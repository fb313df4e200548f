"""verify_audit: every chain, head and anchor is checked, and a break is named exactly (patient, seq,
expected vs found); heads are anchored through the outbox and checked against the indexed root."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper
from web3.contract import Contract

from access.audit.anchoring import (
    Leaf,
    anchor_audit_heads,
    merkle_proof,
    merkle_root,
    sort_leaves,
    verify_proof,
)
from access.audit.log import AccessEvent, record_accesses
from access.audit.verify import benchmark_verify, verify_audit
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditAnchorBatch,
    AuditBatchStatus,
    AuditChainHead,
    LegalBasis,
)
from contracts import client
from contracts.drain import drain_outbox
from contracts.models import ChainEvent, OutboxItem
from tests.conftest import Personas
from tests.fixtures.audit_log import tampering_with_the_log


def _events(patient, n: int, actor) -> list[AccessEvent]:
    return [
        AccessEvent(
            patient_address=patient.eth_address,
            actor=actor,
            actor_address=actor.eth_address,
            action=AccessAction.OPEN,
            purpose=AccessPurpose.TREATMENT,
            outcome=AccessOutcome.ALLOWED,
            legal_basis=LegalBasis(f"consent:x@{i}"),
            record_id=f"rec-{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def logs(personas: Personas, own_anchors: Contract) -> Personas:
    record_accesses(_events(personas.alice, 5, personas.bob) + _events(personas.dave, 3, personas.carol))
    return personas


def test_intact_log_verifies(logs: Personas) -> None:
    report = verify_audit()
    assert report.ok, report.breaks
    assert (report.chains, report.entries) == (2, 8)


def test_tampered_canonical_bytes_are_named_by_patient_and_seq(logs: Personas) -> None:
    entry = AccessLogEntry.objects.get(patient_address=logs.alice.eth_address, seq=3)
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(pk=entry.pk).update(
            canonical=bytes(entry.canonical).replace(b"rec-2", b"rec-9")
        )
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("hash_mismatch", logs.alice.eth_address, 3)
    ]
    assert report.breaks[0].expected == "0x" + bytes(entry.entry_hash).hex()
    assert report.breaks[0].found != report.breaks[0].expected


def test_deleted_middle_entry_is_named_as_missing(logs: Personas) -> None:
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=logs.dave.eth_address, seq=2).delete()
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("missing_entry", logs.dave.eth_address, 2)
    ]


def test_deleted_last_entry_is_caught_by_the_head(logs: Personas) -> None:
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=logs.dave.eth_address, seq=3).delete()
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("head_mismatch", logs.dave.eth_address, 3)
    ]


def test_merkle_proof_shows_each_head_is_included() -> None:
    leaves = sort_leaves(Leaf(f"0x{i:040x}", i + 1, bytes([i]) * 32) for i in range(7))
    digests = [leaf.digest() for leaf in leaves]
    root = merkle_root(digests)
    for index, digest in enumerate(digests):
        assert verify_proof(digest, merkle_proof(digests, index), root)
    assert not verify_proof(digests[0], merkle_proof(digests, 1), root)


def test_heads_are_anchored_in_one_batch_and_verified_against_the_indexed_root(logs: Personas) -> None:
    batch = anchor_audit_heads()
    assert batch is not None and batch.head_count == 2
    assert OutboxItem.objects.filter(kind="anchor.audit_root").count() == 1
    assert anchor_audit_heads() is None  # nothing changed since
    drain_outbox()
    batch.refresh_from_db()
    assert batch.status == AuditBatchStatus.ANCHORED and batch.anchored_block
    event = ChainEvent.objects.get(contract="Anchors", event="AuditRootAnchored")
    assert event.args["root"].lower() == batch.root
    report = verify_audit()
    assert report.ok, report.breaks
    assert (report.batches_checked, report.heads_anchored) == (1, 2)


def test_only_changed_heads_go_into_the_next_batch(logs: Personas) -> None:
    anchor_audit_heads()
    record_accesses(_events(logs.alice, 1, logs.bob))
    second = anchor_audit_heads()
    assert second is not None
    assert list(second.leaves.values_list("patient_address", "seq")) == [(logs.alice.eth_address, 6)]
    assert AuditChainHead.objects.get(patient_address=logs.alice.eth_address).anchored_seq == 6


def test_rewritten_chain_is_caught_by_its_anchor(logs: Personas) -> None:
    """Rewriting an entry AND every hash after it (and the head) passes the chain check, not the anchor."""
    anchor_audit_heads()
    drain_outbox()
    entries = list(AccessLogEntry.objects.filter(patient_address=logs.dave.eth_address).order_by("seq"))
    import hashlib

    prev = bytes(entries[0].entry_hash)
    with tampering_with_the_log():
        for entry in entries[1:]:
            canonical = bytes(entry.canonical).replace(b"consent:x", b"consent:y")
            prev = hashlib.sha256(prev + canonical).digest()
            AccessLogEntry.objects.filter(pk=entry.pk).update(
                canonical=canonical,
                entry_hash=prev,
                legal_basis=entry.legal_basis.replace("consent:x", "consent:y"),
            )
    AuditChainHead.objects.filter(patient_address=logs.dave.eth_address).update(head_hash=prev)
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("leaf_mismatch", logs.dave.eth_address, 3)
    ]


def test_batch_root_differing_from_the_chain_is_reported(logs: Personas) -> None:
    batch = anchor_audit_heads()
    assert batch is not None
    drain_outbox()
    AuditAnchorBatch.objects.filter(pk=batch.pk).update(root="0x" + "11" * 32)
    kinds = {b.kind for b in verify_audit().breaks}
    assert kinds == {"root_mismatch", "anchor_root_mismatch"}


def test_verify_audit_command_exits_nonzero_and_names_the_break(logs: Personas) -> None:
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=logs.alice.eth_address, seq=4).delete()
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert f"missing_entry at patient {logs.alice.eth_address} seq 4" in out.getvalue()


def test_verify_audit_command_prints_a_json_report(logs: Personas) -> None:
    out = io.StringIO()
    call_command("verify_audit", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True and report["entries"] == 8 and report["breaks"] == []


def test_anchor_audit_command_queues_and_drains(logs: Personas) -> None:
    out = io.StringIO()
    call_command("anchor_audit", "--wait", stdout=out)
    assert "2 heads" in out.getvalue()
    assert AuditAnchorBatch.objects.get().status == AuditBatchStatus.ANCHORED


def test_benchmark_leaves_no_rows_behind(logs: Personas) -> None:
    figures = benchmark_verify(2_000, patients=50)
    assert figures["ok"] and figures["entries"] == 2_008
    assert AccessLogEntry.objects.count() == 8


# --- issue 13: the copied columns, the stored type, the unanchored tail -------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "deny"),
        ("outcome", "denied"),
        ("purpose", "TRAINING"),
        ("legal_basis", "owner"),
        ("record_id", "rec-other"),
        ("actor_address", "0x000000000000000000000000000000000000dEaD"),
        ("reason", "edited"),
        ("detail", {"edited": True}),
    ],
)
def test_an_edited_filterable_column_is_reported_against_the_hashed_entry(
    logs: Personas, column: str, value: object
) -> None:
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=logs.alice.eth_address, seq=2).update(**{column: value})
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("column_mismatch", logs.alice.eth_address, 2)
    ]
    assert report.breaks[0].found.startswith(f"{column}=") and report.breaks[0].expected.startswith(
        f"{column}="
    )


def test_an_edited_creation_time_or_actor_is_reported(logs: Personas) -> None:
    entry = AccessLogEntry.objects.get(patient_address=logs.dave.eth_address, seq=1)
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(pk=entry.pk).update(
            created_at=entry.created_at - dt.timedelta(days=1), actor=logs.bob
        )
    (found,) = verify_audit().breaks
    assert (found.kind, found.patient, found.seq) == ("column_mismatch", logs.dave.eth_address, 1)
    assert "actor_id=" in found.found and "created_at=" in found.found


@pytest.mark.skipif(connection.vendor != "sqlite", reason="only SQLite lets a bytes column hold text")
def test_canonical_stored_as_text_is_reported_by_patient_and_seq_not_a_crash(logs: Personas) -> None:
    entry = AccessLogEntry.objects.get(patient_address=logs.alice.eth_address, seq=3)
    with tampering_with_the_log(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE access_accesslogentry SET canonical = CAST(canonical AS TEXT) WHERE id = %s", [entry.pk]
        )
    report = verify_audit()
    assert [(b.kind, b.patient, b.seq) for b in report.breaks] == [
        ("malformed_entry", logs.alice.eth_address, 3)
    ]
    assert report.breaks[0].found == "canonical stored as text"
    assert report.entries == 8  # the walk went on past it


def test_unanchored_entries_are_counted_with_the_age_of_the_oldest(logs: Personas) -> None:
    report = verify_audit()
    assert report.ok and report.unanchored_entries == 8
    assert report.unanchored_since is not None and report.unanchored_age_s is not None
    assert 0 <= report.unanchored_age_s < 60
    assert "8 entries not yet anchored (oldest" in report.summary()
    anchor_audit_heads()
    drain_outbox()
    assert verify_audit().unanchored_entries == 0
    record_accesses(_events(logs.alice, 2, logs.bob))
    later = verify_audit()
    assert later.ok and later.unanchored_entries == 2


def test_command_says_plainly_that_an_unanchored_tail_can_vanish_unnoticed(logs: Personas) -> None:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    text = out.getvalue()
    assert "8 entries not yet anchored" in text
    assert "cannot be detected until they are anchored" in text and "append-only triggers" in text


def test_a_head_wound_back_below_its_anchored_seq_is_reported(logs: Personas) -> None:
    """Deleting the tail and winding the head back, once that tail is anchored, no longer passes."""
    anchor_audit_heads()
    drain_outbox()
    alice = logs.alice.eth_address
    third = AccessLogEntry.objects.get(patient_address=alice, seq=3)
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(patient_address=alice, seq__gt=3).delete()
    AuditChainHead.objects.filter(patient_address=alice).update(seq=3, head_hash=bytes(third.entry_hash))
    report = verify_audit()
    assert sorted((b.kind, b.patient, b.seq) for b in report.breaks) == [
        ("anchored_head_lost", alice, 5),
        ("head_behind_anchor", alice, 5),
    ]


def test_the_log_read_from_the_node_is_said_to_be_so(logs: Personas, settings: SettingsWrapper) -> None:
    assert verify_audit().chain_read
    settings.ETH_RPC_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    client.reset_caches()
    report = verify_audit()
    assert report.ok and not report.chain_read
    assert "NOT read from the chain" in report.summary() and "indexed copy only" in report.notes[0]
