"""open_record, the one door: owner, consent, break-glass and their denials, every decision in the access
log; records anchored on chain by the relayer and indexer; tampered bytes refused, never returned."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from access.audit import breakglass
from access.models import AccessLogEntry
from contracts import client
from contracts.drain import drain_outbox
from ehr import anchoring, records
from ehr.models import Record
from ehr.storage import LocalBlockStore
from healthhash.errors import NotFound
from tests.ehr.conftest import observation
from tests.fixtures.chain import ChainClock

pytestmark = pytest.mark.django_db(transaction=True)


def _new(patient: Any, value: float = 13.2) -> Record:
    return records.create_record(actor=patient, patient=patient, resource=observation(value=value))


def test_owner_open_is_logged_with_owner_basis(personas: Any) -> None:
    record = _new(personas.alice)
    opened = records.open_record(record_id=record.id, actor=personas.alice)
    assert opened.resource["valueQuantity"]["value"] == 13.2
    entry = AccessLogEntry.objects.get(record_id=str(record.id), action="open")
    assert (entry.legal_basis, entry.purpose, entry.outcome) == ("owner", "OWNER", "allowed")


def test_consent_open_names_the_consent_and_its_block(personas: Any, grant: Any) -> None:
    record = _new(personas.alice)
    consent = grant(personas.alice, personas.bob, "category:laboratory")
    opened = records.open_record(record_id=record.id, actor=personas.bob)
    assert opened.decision.legal_basis == f"consent:{consent.id}@{consent.granted_block}"
    entry = AccessLogEntry.objects.get(record_id=str(record.id), action="open")
    assert entry.actor == personas.bob and entry.legal_basis == opened.decision.legal_basis


def test_expired_consent_is_denied_as_expired(
    personas: Any, grant: Any, chain_clock: ChainClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _new(personas.alice)
    # Ten minutes after the later of the two clocks: the shared chain may run ahead of wall time.
    start = max(int(timezone.now().timestamp()), chain_clock.now())
    expires = dt.datetime.fromtimestamp(start, tz=dt.UTC) + dt.timedelta(minutes=10)
    grant(personas.alice, personas.bob, "chart", expires_at=expires)
    records.open_record(record_id=record.id, actor=personas.bob)  # allowed until it expires
    # Time passes without sleeping. The chain judges expiry by block time, so its clock moves; the "now"
    # check judges it by wall time (timezone.now), so Django's clock is patched to the same moment.
    after = chain_clock.advance_past(int(expires.timestamp()))
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime.fromtimestamp(after, tz=dt.UTC))
    registry = personas.chain.registry
    zero = bytes(32)
    assert not registry.functions.isAllowed(
        personas.alice.eth_address, personas.bob.eth_address, zero, zero, 0
    ).call()
    with pytest.raises(records.AccessDenied) as denied:
        records.open_record(record_id=record.id, actor=personas.bob)
    assert denied.value.code == "expired"


def test_break_glass_opens_without_consent_and_is_logged(personas: Any) -> None:
    record = _new(personas.alice)
    with pytest.raises(NotFound):
        records.open_record(record_id=record.id, actor=personas.carol)
    glass = breakglass.start_break_glass(
        doctor=personas.carol,
        patient_address=personas.alice.eth_address,
        reason="unconscious in the ER, allergies?",
    )
    opened = records.open_record(record_id=record.id, actor=personas.carol)
    assert opened.decision.legal_basis == f"break_glass:{glass.id}" and opened.decision.purpose == "EMERGENCY"
    from ehr.record_selectors import records_visible_to

    assert list(records_visible_to(personas.carol)) == [record]


def test_record_is_anchored_in_a_batch_after_the_outbox_drains(personas: Any) -> None:
    record = _new(personas.alice)
    assert record.anchor_batch is None and record.anchored_block is None
    (batch,) = anchoring.anchor_all_records()
    drain_outbox()
    record.refresh_from_db()
    batch.refresh_from_db()
    assert record.anchored_block == batch.anchored_block is not None
    on_chain = client.call("Anchors", "recordRootOf", bytes.fromhex(batch.batch_id[2:]))
    assert "0x" + bytes(on_chain).hex() == batch.root == batch.anchored_root
    assert anchoring.proves_inclusion(record, batch.root)


def _corrupt_pack(record: Record) -> None:
    """Overwrite bytes of the stored block in its pack file, as an attacker with disk access would."""
    store = LocalBlockStore(settings.IPFS_LOCAL_DIR)
    import sqlite3

    with sqlite3.connect(store.root / "index.sqlite3") as db:
        pack, offset, length = db.execute("SELECT pack, offset, length FROM blocks").fetchall()[-1]
    path = store.root / "packs" / pack
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset + length - 8)
        handle.write(b"\x00TAMPER\x00")


def test_tampered_stored_bytes_are_refused_and_alerted(personas: Any) -> None:
    record = _new(personas.alice)
    _corrupt_pack(record)
    with pytest.raises(records.Tampered):
        records.open_record(record_id=record.id, actor=personas.alice)
    alert = AccessLogEntry.objects.get(record_id=str(record.id), action="tamper")
    assert alert.outcome == "error" and "content address" in alert.reason


def test_tampered_bytes_via_api_are_409_tampered(personas: Any) -> None:
    record = _new(personas.alice)
    _corrupt_pack(record)
    response = personas.client_for(personas.alice).get(f"/api/records/{record.id}/content")
    assert response.status_code == 409 and response.json()["error"] == "tampered"
    assert b"valueQuantity" not in response.content


def test_swapped_blob_with_matching_db_digest_fails_the_anchor_check(personas: Any) -> None:
    """An attacker who rewrites cid and digest together is caught by the Merkle root anchored on chain."""
    victim, other = _new(personas.alice), _new(personas.alice, value=99.0)
    anchoring.anchor_all_records()
    drain_outbox()
    Record.objects.filter(pk=victim.pk).update(cid=other.cid, digest=other.digest)
    with pytest.raises(records.Tampered):
        records.open_record(record_id=victim.id, actor=personas.alice)
    assert "anchored on chain" in AccessLogEntry.objects.get(record_id=str(victim.id), action="tamper").reason


def test_record_owner_check_lets_a_patient_consent_to_her_own_record_only(personas: Any, grant: Any) -> None:
    mine, theirs = _new(personas.alice), _new(personas.dave)
    grant(personas.alice, personas.bob, f"record:{mine.id}")
    from access.consent import services as consent_services
    from healthhash.errors import DomainError
    from tests.conftest import PASSWORD

    with pytest.raises(DomainError) as refused:
        consent_services.grant_with_managed_key(
            patient=personas.alice,
            password=PASSWORD,
            grantee=personas.bob.eth_address,
            scope=f"record:{theirs.id}",
            purpose="TREATMENT",
            expires_at=None,
        )
    assert refused.value.code == "unknown_record"


def test_deactivated_doctor_neither_opens_nor_lists_despite_a_consent(personas: Any, grant: Any) -> None:
    """The Directory is the source of who practises: a doctor deactivated on chain keeps their consents
    on chain, but the door and the lists no longer let them in."""
    from access.models import Doctor
    from ehr.record_selectors import records_visible_to

    record = _new(personas.alice)
    grant(personas.alice, personas.bob)
    assert records.open_record(record_id=record.id, actor=personas.bob).decision.allowed
    Doctor.objects.filter(user=personas.bob).update(active=False)  # as the DoctorDeactivated handler does
    with pytest.raises(records.AccessDenied) as refused:
        records.open_record(record_id=record.id, actor=personas.bob)
    assert refused.value.code == "not_active_doctor"
    assert not records_visible_to(personas.bob).exists()
    assert AccessLogEntry.objects.filter(record_id=str(record.id), outcome="denied").exists()
