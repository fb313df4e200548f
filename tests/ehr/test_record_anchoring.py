"""Records anchored as Merkle roots of batches: created without an outbox item, batched (one root and ONE
outbox item per batch, each record keeping its proof), anchored by the real relayer and indexer on anvil,
checked on open and by `verify_records` against the root the chain holds."""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from eth_account import Account

from access.audit import anchoring as audit_tree
from access.models import AccessLogEntry
from contracts.drain import drain_outbox
from contracts.models import ChainTx, OutboxItem
from ehr import anchor_handlers, anchoring, records
from ehr.anchor_verify import verify_records
from ehr.models import Record, RecordAnchorBatch
from ehr.tasks import anchor_records
from tests.ehr.conftest import observation

pytestmark = pytest.mark.django_db(transaction=True)


def _bundle(count: int) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation(value=10 + i)} for i in range(count)],
    }


def _import(patient: Any, count: int) -> list[Record]:
    return records.import_bundle(actor=patient, patient=patient, bundle=_bundle(count)).records


# --------------------------------------------------------------------------- the tree


def _leaf_by_the_spec(record_id: uuid.UUID, patient: str, digest: bytes) -> bytes:
    """The documented leaf, written out independently of ehr.anchoring."""
    return hashlib.sha256(bytes([0]) + record_id.bytes + bytes.fromhex(patient[2:]) + digest).digest()


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 257])
def test_roots_and_proofs_agree_with_the_access_log_tree(count: int) -> None:
    rng = random.Random(count)
    rows = [
        (uuid.UUID(int=rng.getrandbits(128)), Account.create().address, rng.randbytes(32))
        for _ in range(count)
    ]
    leaves = [
        anchoring.leaf_hash(record_id=rid, patient_address=patient, digest=digest.hex())
        for rid, patient, digest in rows
    ]
    assert leaves == [_leaf_by_the_spec(*row) for row in rows]
    root, proofs = anchoring.merkle_root_and_proofs(leaves)
    assert root == audit_tree.merkle_root(leaves)
    for index in {0, count // 2, count - 1}:
        expected = b"".join(
            side.encode() + sibling for side, sibling in audit_tree.merkle_proof(leaves, index)
        )
        assert proofs[index] == expected
        assert anchoring.root_from_proof(leaves[index], proofs[index]) == root
    assert anchoring.root_from_proof(hashlib.sha256(b"not a leaf").digest(), proofs[0]) != root


def test_a_malformed_proof_proves_nothing() -> None:
    leaf = hashlib.sha256(b"leaf").digest()
    assert anchoring.root_from_proof(leaf, b"X" + bytes(32)) is None
    assert anchoring.root_from_proof(leaf, b"L" + bytes(31)) is None


# --------------------------------------------------------------------------- batching


def test_records_are_created_unanchored_and_without_an_outbox_item(personas: Any) -> None:
    created = _import(personas.alice, 3)
    assert not OutboxItem.objects.exists()
    assert all(r.anchor_batch_id is None and r.anchored_block is None for r in created)


def test_a_batch_queues_one_outbox_item_and_every_record_keeps_a_valid_proof(personas: Any) -> None:
    created = _import(personas.alice, 5) + _import(personas.dave, 4)
    batch = anchoring.anchor_record_batch()
    assert batch is not None and batch.record_count == 9
    assert OutboxItem.objects.count() == 1
    assert batch.outbox is not None
    assert batch.outbox.kind == "anchor.record_root"
    assert batch.outbox.payload == {"root": batch.root, "recordCount": 9, "batchId": batch.batch_id}
    members = list(Record.objects.filter(anchor_batch=batch).order_by("anchor_position"))
    assert {r.id for r in members} == {r.id for r in created}
    assert [r.anchor_position for r in members] == list(range(9))
    assert all(anchoring.proves_inclusion(r, batch.root) for r in members)
    assert anchoring.anchor_record_batch() is None  # nothing left waiting


def test_batches_take_the_oldest_records_first_up_to_max_records(personas: Any) -> None:
    first, second = _import(personas.alice, 3), _import(personas.alice, 2)
    batches = anchoring.anchor_all_records(max_records=2)
    assert [b.record_count for b in batches] == [2, 2, 1]
    assert {r.id for r in batches[0].records.all()} <= {r.id for r in first}
    assert {r.id for r in batches[2].records.all()} <= {r.id for r in second}


def test_a_partial_batch_waits_for_min_records_or_for_the_oldest_to_be_overdue(personas: Any) -> None:
    _import(personas.alice, 3)
    assert anchoring.anchor_waiting_records(min_records=10, max_wait_s=3600) == []
    assert anchoring.anchor_waiting_records(min_records=3, max_wait_s=3600)[0].record_count == 3
    _import(personas.alice, 2)
    (overdue,) = anchoring.anchor_waiting_records(min_records=10, max_wait_s=0)
    assert overdue.record_count == 2


def test_the_periodic_task_batches_with_the_configured_sizes(personas: Any, settings: Any) -> None:
    settings.RECORD_ANCHOR_BATCH_MAX, settings.RECORD_ANCHOR_BATCH_MIN = 4, 4
    _import(personas.alice, 10)
    result = anchor_records()
    assert result["records"] == 8 and len(result["batches"]) == 2  # the last 2 wait for more
    assert "anchor-records" in settings.CELERY_BEAT_SCHEDULE


def test_a_batch_whose_outbox_item_failed_gives_its_records_to_the_next_batch(personas: Any) -> None:
    created = _import(personas.alice, 3)
    failed = anchoring.anchor_record_batch()
    assert failed is not None and failed.outbox_id is not None
    OutboxItem.objects.filter(pk=failed.outbox_id).update(status=OutboxItem.Status.FAILED)
    retry = anchoring.anchor_record_batch()
    failed.refresh_from_db()
    assert failed.status == "failed" and retry is not None and retry.record_count == 3
    assert set(retry.records.values_list("id", flat=True)) == {r.id for r in created}


# --------------------------------------------------------------------------- on chain, on open


def test_one_transaction_anchors_a_whole_batch_and_open_checks_the_proof(personas: Any) -> None:
    created = _import(personas.alice, 120)
    (batch,) = anchoring.anchor_all_records()
    drain_outbox()
    batch.refresh_from_db()
    assert batch.status == "anchored" and batch.anchored_root == batch.root
    tx = ChainTx.objects.get(tx_hash=batch.anchored_tx_hash)
    assert tx.gas_used is not None
    assert tx.gas_used // 120 <= 1_000  # issue 13's target: gas per record anchored
    assert Record.objects.filter(anchored_block=batch.anchored_block).count() == 120
    opened = records.open_record(record_id=created[7].id, actor=personas.alice)
    assert opened.resource["valueQuantity"]["value"] == 17


def test_a_record_whose_digest_and_blob_were_swapped_after_anchoring_is_409(personas: Any) -> None:
    victim, donor = _import(personas.alice, 2)
    anchoring.anchor_all_records()
    drain_outbox()
    Record.objects.filter(pk=victim.pk).update(cid=donor.cid, digest=donor.digest)
    response = personas.client_for(personas.alice).get(f"/api/records/{victim.id}/content")
    assert response.status_code == 409 and response.json()["error"] == "tampered"
    alert = AccessLogEntry.objects.get(record_id=str(victim.id), action="tamper")
    assert "Merkle root anchored on chain" in alert.reason


def test_a_root_indexed_unlike_the_batch_marks_its_records_and_alerts(personas: Any) -> None:
    """The batch row edited after its root was queued: the chain's root (from the outbox payload) wins."""
    (record,) = _import(personas.alice, 1)
    batch = anchoring.anchor_record_batch()
    assert batch is not None
    RecordAnchorBatch.objects.filter(pk=batch.pk).update(root="0x" + "ee" * 32)
    drain_outbox()
    record.refresh_from_db()
    assert record.anchor_mismatch
    listed = personas.client_for(personas.alice).get("/api/records").json()["results"]
    assert [(item["id"], item["anchored"]) for item in listed] == [(str(record.id), False)]
    opened = personas.client_for(personas.alice).get(f"/api/records/{record.id}")
    assert opened.status_code == 409 and opened.json()["error"] == "tampered"
    assert AccessLogEntry.objects.filter(
        patient_address=personas.alice.eth_address, action="tamper", detail__batch=batch.batch_id
    ).exists()


def test_a_reorg_that_drops_the_anchor_block_forgets_the_anchor(personas: Any) -> None:
    (record,) = _import(personas.alice, 1)
    (batch,) = anchoring.anchor_all_records()
    drain_outbox()
    batch.refresh_from_db()
    assert batch.anchored_block is not None
    anchor_handlers.rewind_from(batch.anchored_block)
    batch.refresh_from_db()
    record.refresh_from_db()
    assert batch.status == "queued" and batch.anchored_root == "" and record.anchored_block is None
    assert anchoring.anchored_root_of(record) is None


# --------------------------------------------------------------------------- verify_records


def test_verify_records_checks_every_proof_against_the_chain_and_reports_the_backlog(personas: Any) -> None:
    anchored = _import(personas.alice, 6)
    anchoring.anchor_all_records(max_records=4)
    drain_outbox()
    _import(personas.dave, 2)  # not anchored yet
    report = verify_records()
    assert report.ok and (report.batches_checked, report.records_checked) == (2, 6)
    assert report.backlog is not None and report.backlog.unbatched == 2
    assert "2 records not yet anchored" in report.unanchored_line()

    Record.objects.filter(pk=anchored[0].pk).update(digest="ab" * 32)
    report = verify_records()
    assert not report.ok
    assert any(f"record {anchored[0].id}: not included" in problem for problem in report.problems)
    assert any("root differs from the root on chain" in problem for problem in report.problems)


def test_verify_records_finds_a_record_taken_out_of_its_batch(personas: Any) -> None:
    """Detaching a record makes it look unanchored to open; the batch's count and root give it away."""
    created = _import(personas.alice, 3)
    anchoring.anchor_all_records()
    drain_outbox()
    Record.objects.filter(pk=created[1].pk).update(anchor_batch=None, anchored_block=None)
    problems = verify_records().problems
    assert any("2 records in the database, 3 anchored" in problem for problem in problems)


def test_verify_records_command_exits_1_on_a_problem_and_says_why(personas: Any) -> None:
    created = _import(personas.alice, 2)
    out = io.StringIO()
    call_command("anchor_records", "--wait", stdout=out)
    assert "1 batches queued over 2 records" in out.getvalue() and "anchored in block" in out.getvalue()
    out = io.StringIO()
    call_command("verify_records", stdout=out)
    assert "2 records in 1 anchored batches checked against the chain: OK" in out.getvalue()
    assert "every record is anchored" in out.getvalue()
    Record.objects.filter(pk=created[0].pk).update(patient_address=personas.dave.eth_address)
    with pytest.raises(SystemExit) as exited:
        call_command("verify_records", stdout=io.StringIO(), stderr=io.StringIO())
    assert exited.value.code == 1


def test_verify_audit_also_checks_record_roots_and_fails_on_a_moved_record(personas: Any) -> None:
    created = _import(personas.alice, 2)
    call_command("anchor_records", "--wait", stdout=io.StringIO())
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "records: 2 records in 1 anchored batches checked against the chain: OK" in out.getvalue()
    Record.objects.filter(pk=created[0].pk).update(patient_address=personas.dave.eth_address)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", stdout=out)
    assert exited.value.code == 1
    assert f"BREAK records: record {created[0].id}" in out.getvalue()
