"""The narrated story of `manage.py demo`: charts imported, a consented read, a revocation that bites,
a break-glass that is logged and reviewed, the access log anchored on chain and verified."""

from __future__ import annotations

import time
from collections.abc import Callable

from access.audit import breakglass
from access.audit.anchoring import anchor_audit_heads
from access.audit.selectors import access_log_of
from access.audit.verify import verify_audit
from access.consent import selectors as consent_selectors
from access.consent import services as consent_services
from access.models import Purpose
from contracts.drain import drain_outbox
from contracts.models import ChainTx
from demo.charts import import_demo_charts
from demo.people import DemoWorld, create_table_patients
from ehr.models import Record
from ehr.records import open_record
from healthhash.errors import DomainError

Say = Callable[[str], None]
TABLE_ROWS = 569  # the Breast Cancer Wisconsin (Diagnostic) table that scikit-learn ships


def _tx(tx_hash: str) -> str:
    chain_tx = ChainTx.objects.filter(tx_hash=tx_hash).first()
    gas = f", gas {chain_tx.gas_used:,}" if chain_tx and chain_tx.gas_used else ""
    return f"tx {tx_hash[:18]}…{gas}"


def import_charts(world: DemoWorld, say: Say) -> None:
    patients = world.patients + create_table_patients(TABLE_ROWS - len(world.patients))
    started = time.perf_counter()
    report = import_demo_charts(patients=patients, rows_per_patient=1, hospitals=world.hospitals)
    seconds = time.perf_counter() - started
    if report.records:
        say(
            f"   {report.records:,} FHIR records sealed and stored in {seconds:.1f} s "
            f"({report.records / seconds:,.0f}/s) for {len(patients) - len(report.skipped)} patients"
        )
    else:
        say(f"   charts already imported ({Record.objects.count():,} records)")
    drain_outbox()
    anchored = Record.objects.filter(anchored_block__isnull=False).count()
    say(f"   {anchored:,} record digests anchored on chain")


def _try_open(say: Say, *, record: Record, doctor_name: str, actor) -> None:  # type: ignore[no-untyped-def]
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
    record = Record.objects.filter(patient=alice).order_by("created_at").first()
    say(
        f"2. {alice.username} grants {house.user.username} ({house.hospital.name}) "
        "TREATMENT on her whole chart,"
    )
    say("   signing EIP-712 typed data with her managed key; the relayer pays the gas")
    consent = consent_services.grant_with_managed_key(
        patient=alice,
        password=world.password,
        grantee=house.user.eth_address,
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
        patient_address=alice.eth_address,
        grantee_address=house.user.eth_address,
        purpose=Purpose.TREATMENT,
        at_block=consent.granted_block,
    )
    say(
        f"   (asked as of block {consent.granted_block}, when it was active: "
        f"{'allowed' if then.allowed else 'denied'})"
    )


def break_glass_story(world: DemoWorld, say: Say) -> None:
    alice, grey = world.patients[0], world.doctors[1]
    record = Record.objects.filter(patient=alice).order_by("created_at").first()
    say(
        f"4. Emergency: {grey.user.username} ({grey.hospital.name}) "
        f"breaks the glass on {alice.username}'s chart"
    )
    glass = breakglass.start_break_glass(
        doctor=grey.user,
        patient_address=alice.eth_address,
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


def run_story(world: DemoWorld, say: Say) -> None:
    say("1. Importing the demo charts (Breast Cancer Wisconsin, one patient per row, 3 hospitals)")
    import_charts(world, say)
    consent_story(world, say)
    break_glass_story(world, say)
    audit_story(say)
