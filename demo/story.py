"""The narrated story of `manage.py demo`: charts imported, a consented read, a revocation that bites,
a break-glass that is logged and reviewed, the access log anchored on chain and verified."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from access.audit import breakglass
from access.audit.anchoring import anchor_audit_heads
from access.audit.selectors import access_log_of
from access.audit.verify import verify_audit
from access.consent import selectors as consent_selectors
from access.consent import services as consent_services
from access.models import Purpose, User
from contracts.drain import drain_outbox
from contracts.models import ChainTx, OutboxItem
from demo.charts import import_demo_charts
from demo.people import DemoWorld, address_of, create_table_patients
from demo.progress import Progress
from ehr.anchor_verify import verify_records
from ehr.anchoring import anchor_all_records
from ehr.models import Record, RecordAnchorBatch, RecordBatchStatus
from ehr.records import open_record
from federated.testset import training_row_indices
from healthhash.errors import DomainError

Say = Callable[[str], None]
# The Breast Cancer Wisconsin (Diagnostic) table that scikit-learn ships has 569 rows; the 80% outside the
# coordinator's held-out test set become charts, one patient per row.
TABLE_ROWS = len(training_row_indices())


def _tx(tx_hash: str) -> str:
    chain_tx = ChainTx.objects.filter(tx_hash=tx_hash).first()
    gas = f", gas {chain_tx.gas_used:,}" if chain_tx and chain_tx.gas_used else ""
    return f"tx {tx_hash[:18]}…{gas}"


def import_charts(world: DemoWorld, say: Say, *, progress_stream: TextIO | None = None) -> list[User]:
    stream = progress_stream or sys.stdout
    patients = world.patients + create_table_patients(TABLE_ROWS - len(world.patients))
    started = time.perf_counter()
    bar = Progress("importing charts", len(patients), stream=stream)
    report = import_demo_charts(
        patients=patients, rows_per_patient=1, hospitals=world.hospitals, on_patient=bar.update
    )
    bar.update(len(patients))
    bar.close()
    seconds = time.perf_counter() - started
    if report.records:
        say(
            f"   {report.records:,} FHIR records sealed and stored in {seconds:.1f} s "
            f"({report.records / seconds:,.0f}/s) for {len(patients) - len(report.skipped)} patients"
        )
    else:
        say(f"   charts already imported ({Record.objects.count():,} records)")
    anchor_all_records()  # one Merkle root per batch of records, one outbox item each
    _drain_with_progress("anchoring on chain", stream)
    say(f"   {_anchored_records_line()}")
    return patients


def _anchored_records_line() -> str:
    batches = RecordAnchorBatch.objects.filter(status=RecordBatchStatus.ANCHORED)
    records = sum(batches.values_list("record_count", flat=True))
    txs = ChainTx.objects.filter(tx_hash__in=batches.values("anchored_tx_hash"))
    gas = sum(gas_used or 0 for gas_used in txs.values_list("gas_used", flat=True))
    per_record = f", {gas / records:,.0f} gas per record" if records and gas else ""
    return f"{records:,} records anchored on chain as {batches.count()} Merkle roots{per_record}"


def _drain_with_progress(label: str, stream: TextIO) -> None:
    """drain_outbox, with a progress bar over the items that were waiting when it began."""
    total = OutboxItem.objects.filter(status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT]).count()
    if not total:
        return
    bar = Progress(label, total, stream=stream)
    drain_outbox(on_pass=lambda waiting: bar.update(total - waiting))
    bar.update(total)
    bar.close()


def _try_open(say: Say, *, record: Record, doctor_name: str, actor: User) -> None:
    try:
        opened = open_record(record_id=record.id, actor=actor)
    except DomainError as exc:
        say(
            f"   {doctor_name} opens {record.category} record {str(record.id)[:8]}: "
            f"REFUSED ({exc.code}: {exc.detail})"
        )
        return
    code = (opened.resource.get("code") or {}).get("text") or opened.resource.get("resourceType")
    value = (opened.resource.get("valueQuantity") or {}).get("value", "")
    say(
        f"   {doctor_name} opens {record.category} record {str(record.id)[:8]}: ALLOWED "
        f"({opened.decision.legal_basis}) -> {code} {value}"
    )


def consent_story(world: DemoWorld, say: Say) -> None:
    alice, house = world.patients[0], world.doctors[0]
    record = Record.objects.filter(patient=alice).earliest("created_at")
    say(
        f"2. {alice.username} grants {house.user.username} ({house.hospital.name}) "
        "TREATMENT on her whole chart,"
    )
    say("   signing EIP-712 typed data with her managed key; the relayer pays the gas")
    consent = consent_services.grant_with_managed_key(
        patient=alice,
        password=world.password,
        grantee=address_of(house.user),
        scope="chart",
        purpose=Purpose.TREATMENT.label,
        expires_at=None,
    )
    drain_outbox()
    consent.refresh_from_db()
    say(f"   mined in block {consent.granted_block}: {_tx(consent.grant_tx_hash)}")
    _try_open(say, record=record, doctor_name=house.user.username, actor=house.user)

    say(f"3. {alice.username} revokes it")
    consent = consent_services.revoke_with_managed_key(
        patient=alice, consent=consent, password=world.password
    )
    drain_outbox()
    consent.refresh_from_db()
    say(f"   mined in block {consent.ended_block}: {_tx(consent.revoke_tx_hash)}")
    _try_open(say, record=record, doctor_name=house.user.username, actor=house.user)
    then = consent_selectors.is_allowed(
        patient_address=address_of(alice),
        grantee_address=address_of(house.user),
        purpose=Purpose.TREATMENT,
        at_block=consent.granted_block,
    )
    say(
        f"   (asked as of block {consent.granted_block}, when it was active: "
        f"{'allowed' if then.allowed else 'denied'})"
    )


def break_glass_story(world: DemoWorld, say: Say) -> None:
    alice, grey = world.patients[0], world.doctors[1]
    record = Record.objects.filter(patient=alice).earliest("created_at")
    say(
        f"4. Emergency: {grey.user.username} ({grey.hospital.name}) "
        f"breaks the glass on {alice.username}'s chart"
    )
    glass = breakglass.start_break_glass(
        doctor=grey.user,
        patient_address=address_of(alice),
        reason="Unconscious patient in the emergency department; allergies and history needed now.",
    )
    say(f"   break-glass {str(glass.id)[:8]} until {glass.expires_at:%H:%M} UTC")
    _try_open(say, record=record, doctor_name=grey.user.username, actor=grey.user)
    say(f"   {alice.username}'s access log, newest first:")
    for entry in access_log_of(patient=alice).order_by("-seq")[:5]:
        actor = entry.actor.username if entry.actor else entry.actor_address[:10]
        say(
            f"     #{entry.seq} {entry.created_at:%H:%M:%S} {actor:10} {entry.action:12} "
            f"{entry.outcome:8} {entry.legal_basis}"
        )
    admin = grey.hospital.admin
    queue = breakglass.review_queue(admin=admin, status="pending")
    say(
        f"   {admin.username}'s review queue: {queue.count()} pending "
        f"({', '.join(f'{g.doctor.username} -> {g.patient.username}' for g in queue[:3])})"
    )


def audit_story(say: Say) -> None:
    batch = anchor_audit_heads()
    drain_outbox()
    if batch is not None:
        batch.refresh_from_db()
        say(
            f"5. access-log heads of {batch.head_count} patients anchored as one Merkle root "
            f"{batch.root[:18]}… (batch {str(batch.batch_id)[:18]}…)"
        )
    report = verify_audit()
    say(f"   verify_audit: {report.summary()}")
    records = verify_records()
    verdict = "OK" if records.ok else f"{len(records.problems)} problems"
    say(
        f"   verify_records: {records.records_checked:,} records in {records.batches_checked} batches "
        f"checked against the roots on chain: {verdict}"
    )


def run_story(world: DemoWorld, say: Say) -> list[User]:
    """The story's chapters 1-5; returns the chart holders (for the training chapter)."""
    say("1. Importing the demo charts (Breast Cancer Wisconsin, one patient per row, 3 hospitals)")
    patients = import_charts(world, say)
    consent_story(world, say)
    break_glass_story(world, say)
    audit_story(say)
    return patients
