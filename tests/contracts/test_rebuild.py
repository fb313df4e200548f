"""`sync_chain --rebuild` gives back the consent index from the chain alone: every answer of the consent
rule, now and at every past block, the consent ids the access log names, the scope texts, and the
intents only the database knew (a signed revocation not yet mined still denies; a grant not yet mined
stays pending). Runs on its own anvil: the rebuild replays that chain from its first block."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from access.consent import rule
from access.consent import services as consent_services
from access.models import AccessLogEntry, Consent, ConsentStatus, LegalBasis, LegalBasisKind, Purpose, User
from contracts import indexer
from contracts.drain import drain_outbox
from contracts.models import ChainEvent, IndexerCursor, OutboxItem
from ehr import records
from ehr.models import Record
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas
from tests.ehr.conftest import observation
from tests.fixtures.chain import own_chain_fixture

pytestmark = pytest.mark.django_db


# Its own chain: a full rebuild replays every block of it, and nothing else writes there.
deployed_contracts = own_chain_fixture()


@pytest.fixture(autouse=True)
def isolated_handlers() -> None:
    """Overrides tests/contracts/conftest.py: a rebuild is about the apps' real handlers."""


@pytest.fixture(autouse=True)
def _test_kek(settings: Any) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-test")


def grant(patient: User, grantee: User, scope: str, purpose: str = "TREATMENT", **terms: Any) -> Consent:
    return consent_services.grant_with_managed_key(
        patient=patient,
        password=PASSWORD,
        grantee=grantee.eth_address or "",
        scope=scope,
        purpose=purpose,
        expires_at=terms.get("expires_at"),
    )


def revoke(patient: User, consent: Consent) -> Consent:
    consent.refresh_from_db()
    return consent_services.revoke_with_managed_key(patient=patient, consent=consent, password=PASSWORD)


Answers = dict[tuple[Any, ...], tuple[Any, ...]]


def answers(p: Personas, record_ids: list[uuid.UUID], blocks: range) -> Answers:
    """The rule's answer for every (patient, grantee, record, purpose), now and at each block."""
    grid: Answers = {}
    categories = dict(Record.objects.values_list("pk", "category"))
    for at_block in [None, *blocks]:
        for patient in (p.alice, p.dave):
            for grantee in (p.bob, p.bob2, p.carol):
                for record_id in [None, *record_ids]:
                    for purpose in (Purpose.TREATMENT, Purpose.TRAINING):
                        decision = rule.check(
                            patient_address=patient.eth_address or "",
                            grantee_address=grantee.eth_address or "",
                            purpose=purpose,
                            record_id=record_id,
                            category=categories.get(record_id) if record_id else None,
                            at_block=at_block,
                        )
                        key = (at_block, patient.username, grantee.username, record_id, purpose)
                        grid[key] = (
                            decision.allowed,
                            decision.reason,
                            decision.consent_id,
                            decision.granted_block,
                        )
    return grid


def consent_rows() -> dict[uuid.UUID, tuple[Any, ...]]:
    return {
        row.id: (
            row.consent_key,
            row.version,
            row.scope,
            row.status,
            row.granted_block,
            row.ended_block,
            row.revoke_version,
            row.revoke_outbox_id,
            row.grant_outbox_id,
            row.patient_id,
            row.grantee_user_id,
        )
        for row in Consent.objects.all()
    }


def test_rebuild_gives_back_every_answer_id_scope_and_pending_intent(personas: Personas) -> None:
    p = personas
    w3 = p.chain.w3
    first_block = w3.eth.block_number
    lab = records.create_record(actor=p.alice, patient=p.alice, resource=observation())
    note = records.create_record(actor=p.alice, patient=p.alice, resource=observation(category="vital-signs"))
    dave_lab = records.create_record(actor=p.dave, patient=p.dave, resource=observation())
    drain_outbox()

    chart = grant(p.alice, p.bob, "chart")
    by_record = grant(p.alice, p.bob2, f"record:{lab.id}")
    by_category = grant(p.dave, p.bob, "category:laboratory")
    soon = timezone.now() + dt.timedelta(seconds=3)
    expiring = grant(p.alice, p.carol, "chart", purpose="TRAINING", expires_at=soon)
    drain_outbox()
    w3.provider.make_request("anvil_mine", ["0x2"])  # type: ignore[arg-type]
    # The access log names the consents that allowed each read (legal bases by consent id).
    records.open_record(record_id=lab.id, actor=p.bob)
    records.open_record(record_id=lab.id, actor=p.bob2)
    records.open_record(record_id=dave_lab.id, actor=p.bob)
    revoke(p.alice, chart)
    drain_outbox()
    regrant = grant(p.alice, p.bob, "chart")  # version 2 of the same key, after the revocation
    carol_dave = grant(p.dave, p.carol, "chart")
    drain_outbox()
    records.open_record(record_id=note.id, actor=p.bob)
    # What only the database knows: a signed revocation and a grant, both not yet mined.
    revoke(p.dave, by_category)
    pending_grant = grant(p.dave, p.bob2, f"record:{dave_lab.id}")
    assert OutboxItem.objects.filter(status=OutboxItem.Status.PENDING).count() == 2
    wait = (soon - timezone.now()).total_seconds()
    time.sleep(max(0.0, wait) + 0.5)  # the TRAINING consent has expired by now

    head = w3.eth.block_number
    record_ids = [lab.id, note.id, dave_lab.id]
    before = answers(p, record_ids, range(first_block, head + 1))
    assert before[(None, "dave", "bob", dave_lab.id, Purpose.TREATMENT)][1] == "revocation_pending"
    assert before[(None, "alice", "carol", None, Purpose.TRAINING)][1] == "expired"
    assert before[(None, "alice", "bob", lab.id, Purpose.TREATMENT)][2] == regrant.id
    rows_before = consent_rows()
    assert {expiring.id, by_record.id, carol_dave.id, pending_grant.id} <= set(rows_before)
    bases = list(
        AccessLogEntry.objects.filter(legal_basis__startswith="consent:").values_list(
            "legal_basis", flat=True
        )
    )
    assert len(bases) == 4

    # The whole index is lost: consent rows, stored events, block hashes and the cursor.
    Consent.objects.all().delete()
    ChainEvent.objects.all().delete()
    IndexerCursor.objects.all().delete()
    out = StringIO()
    call_command("sync_chain", "--rebuild", stdout=out)
    assert "rebuilt from block 0" in out.getvalue()

    assert consent_rows() == rows_before
    assert answers(p, record_ids, range(first_block, head + 1)) == before
    assert Consent.objects.get(pk=by_record.id).scope == f"record:{lab.id}"
    assert Consent.objects.get(pk=pending_grant.id).status == ConsentStatus.PENDING
    for text in bases:
        basis = LegalBasis.parse(text)
        assert basis.kind == LegalBasisKind.CONSENT
        assert Consent.objects.filter(pk=basis.ref, granted_block=basis.block).exists(), text

    # A partial rebuild from a later block keeps the rows below it and gives the same answers.
    call_command("sync_chain", "--rebuild", "--from-block", str(regrant_block(regrant)), stdout=StringIO())
    assert consent_rows() == rows_before
    assert answers(p, record_ids, range(first_block, head + 1)) == before

    # The intents go on as if nothing happened: the revocation is mined and bites, the grant allows.
    drain_outbox()
    dave_by_bob = rule.check(
        patient_address=p.dave.eth_address or "",
        grantee_address=p.bob.eth_address or "",
        purpose=Purpose.TREATMENT,
        record_id=dave_lab.id,
        category="laboratory",
    )
    assert (dave_by_bob.allowed, dave_by_bob.reason) == (False, "revoked")
    assert Consent.objects.get(pk=pending_grant.id).status == ConsentStatus.ACTIVE
    assert indexer.sync_chain().new_events == 0

    # A record scope the database never saw as text (granted on chain directly: no outbox item) gets its
    # text back from the hash of one of the patient's record ids.
    item_id = Consent.objects.get(pk=by_record.id).grant_outbox_id
    assert item_id is not None
    OutboxItem.objects.filter(pk=item_id).delete()
    Consent.objects.filter(pk=by_record.id).update(scope="")
    call_command("sync_chain", "--rebuild", stdout=StringIO())
    assert Consent.objects.get(pk=by_record.id).scope == f"record:{lab.id}"


def regrant_block(consent: Consent) -> int:
    consent.refresh_from_db()
    assert consent.granted_block is not None
    return consent.granted_block
