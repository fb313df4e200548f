"""A database restored to an older copy: until the indexer has caught up with the chain, consent checks
fail closed (503 index_behind) instead of answering from the old rows, and the relayer sends nothing
(items pending at backup time may be done on chain already). Afterwards both carry on as usual.

The "backup" is the chain I/O and consent rows dumped with Django's serializers and loaded back over
the newer rows: what restoring a database file does to these tables."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import serializers
from django.db import transaction

from access.audit.log import AccessEvent, record_access
from access.consent import rule
from access.consent import services as consent_services
from access.models import (
    AccessAction,
    AccessOutcome,
    AccessPurpose,
    Consent,
    ConsentStatus,
    LegalBasis,
    Purpose,
    User,
)
from contracts import indexer, relayer
from contracts.drain import drain_outbox
from contracts.models import ChainEvent, ChainTx, IndexedBlock, IndexerCursor, OutboxItem, RelayerState
from tests.conftest import PASSWORD, Personas
from tests.fixtures.chain import own_chain_fixture

pytestmark = pytest.mark.django_db

# Order matters for loading (foreign keys point backwards) and reversed for deleting.
BACKED_UP: list[type[Any]] = [
    ChainTx,
    OutboxItem,
    Consent,
    ChainEvent,
    IndexedBlock,
    IndexerCursor,
    RelayerState,
]


# Its own chain: the test counts the relayer's transactions and blocks behind the index.
deployed_contracts = own_chain_fixture()


@pytest.fixture(autouse=True)
def isolated_handlers() -> None:
    """Overrides tests/contracts/conftest.py: the consent handlers are part of what is restored."""


def backup() -> str:
    return serializers.serialize("json", [row for model in BACKED_UP for row in model.objects.all()])


def restore(dump: str) -> None:
    with transaction.atomic():
        for model in reversed(BACKED_UP):
            model.objects.all().delete()
        for row in serializers.deserialize("json", dump):
            row.save()
    indexer.forget_index_state()  # this process saw the newer database a moment ago


def check_now(patient: User, grantee: User) -> rule.ConsentDecision:
    return rule.check(
        patient_address=patient.eth_address or "",
        grantee_address=grantee.eth_address or "",
        purpose=Purpose.TREATMENT,
    )


def grant(patient: User, grantee: User) -> Consent:
    return consent_services.grant_with_managed_key(
        patient=patient,
        password=PASSWORD,
        grantee=grantee.eth_address or "",
        scope="chart",
        purpose="TREATMENT",
        expires_at=None,
    )


def own_open(patient: User) -> AccessEvent:
    """A patient opening her own record: no consent check runs, but the access log is written."""
    address = patient.eth_address or ""
    return AccessEvent(
        patient_address=address,
        actor=patient,
        actor_address=address,
        action=AccessAction.OPEN,
        purpose=AccessPurpose.TREATMENT,
        outcome=AccessOutcome.ALLOWED,
        legal_basis=LegalBasis.owner(),
    )


def test_after_a_restore_checks_fail_closed_and_the_relayer_waits_for_the_indexer(
    personas: Personas, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = personas
    w3 = p.chain.w3
    monkeypatch.setattr(indexer, "MAX_INDEX_LAG_BLOCKS", 3)
    chart = grant(p.alice, p.bob)
    drain_outbox()
    pending_at_backup = grant(p.alice, p.bob2)  # accepted, not yet relayed when the backup is taken
    dump = backup()

    # After the backup: the pending grant is mined, the first consent revoked (mined and indexed).
    drain_outbox()
    chart.refresh_from_db()
    consent_services.revoke_with_managed_key(patient=p.alice, consent=chart, password=PASSWORD)
    drain_outbox()
    assert check_now(p.alice, p.bob).reason == "revoked"
    w3.provider.make_request("anvil_mine", ["0x4"])  # type: ignore[arg-type]
    relayer_nonce = w3.eth.get_transaction_count(relayer.client.relayer_account().address)

    restore(dump)
    assert Consent.objects.get(pk=chart.pk).status == ConsentStatus.ACTIVE  # the old row says allowed
    with pytest.raises(indexer.IndexBehind):
        check_now(p.alice, p.bob)
    response = p.client_for(p.alice).get(
        "/api/consents/check",
        {"patient": p.alice.eth_address or "", "grantee": p.bob.eth_address or "", "purpose": "TREATMENT"},
    )
    assert response.status_code == 503
    assert response.json()["error"] == "index_behind"
    # No access-log write either: a batch anchored after the backup may hold the seqs it would hand out,
    # and only the chain events the index has not read yet say so.
    with pytest.raises(indexer.IndexBehind):
        record_access(own_open(p.alice))

    report = relayer.relay_once()
    assert report.index_behind > 3 and report.txs_sent == 0
    assert w3.eth.get_transaction_count(relayer.client.relayer_account().address) == relayer_nonce
    assert pending_at_backup.grant_outbox is not None
    assert OutboxItem.objects.get(pk=pending_at_backup.grant_outbox.pk).status == OutboxItem.Status.PENDING

    indexer.sync_chain()  # the indexer catches up first ...
    assert check_now(p.alice, p.bob).reason == "revoked"
    assert record_access(own_open(p.alice)).seq >= 1
    assert check_now(p.alice, p.bob2).allowed
    relayer.relay_once()  # ... then the relayer may send; the grant mined since the backup stays active
    indexer.sync_chain()
    assert Consent.objects.get(pk=pending_at_backup.pk).status == ConsentStatus.ACTIVE
    assert check_now(p.alice, p.bob2).allowed


def test_a_lag_of_a_few_blocks_keeps_checks_and_sending_going(personas: Personas) -> None:
    p = personas
    grant(p.alice, p.bob)
    drain_outbox()
    p.chain.w3.provider.make_request("anvil_mine", ["0x3"])  # type: ignore[arg-type]
    indexer.forget_index_state()
    assert check_now(p.alice, p.bob).allowed  # the indexer has not seen the last 3 blocks: still answers
    grant(p.alice, p.bob2)
    assert relayer.relay_once().txs_sent == 1
