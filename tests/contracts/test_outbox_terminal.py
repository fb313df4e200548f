"""Every outbox item ends confirmed or failed, and only with proof: a receipt from an address without our
contract's code, or without the kind's event, is no confirmation. A grant that failed in any way fails
its consent, with a readable reason, and a new grant of that consent is accepted (a retry)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import transaction
from eth_account import Account
from pytest_django.fixtures import Settings as SettingsWrapper

from access.consent import chain_handlers as consent_handlers
from access.models import Consent, ConsentStatus
from contracts import outbox, relayer
from contracts.drain import drain_outbox
from contracts.messages import DirectoryAction, Domain
from contracts.models import Deployment, OutboxItem
from contracts.node import start_anvil
from contracts.relayer_kinds import DirectoryActionItem, RecordRootItem
from tests.conftest import PASSWORD, Personas
from tests.contracts.conftest import World, build_world
from tests.contracts.test_chain_identity import grant_item
from tests.fixtures.chain import ChainClock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def consent_handlers_on() -> None:
    """The consent app's indexer handlers (the chain layer's tests set them aside)."""
    consent_handlers.register()


def register_doctor_action(world: World) -> tuple[DirectoryActionItem, str]:
    doctor = Account.create().address
    nonce = world.directory.functions.nonces(world.hospital_admin.address).call()
    message = DirectoryAction(
        op=2, hospital_id=world.hospital_id, subject=doctor, nonce=nonce, deadline=int(time.time()) + 3600
    )
    payload = message.typed_data(Domain(31337, world.directory.address))
    signature = world.hospital_admin.sign_typed_data(full_message=payload).signature
    return DirectoryActionItem(message, world.hospital_admin.address, signature), doctor


def test_action_sent_to_an_address_without_code_fails_and_can_be_retried(world: World) -> None:
    real = Deployment.objects.get(name="Directory").address
    Deployment.objects.filter(name="Directory").update(address=Account.create().address)
    action, doctor = register_doctor_action(world)
    with transaction.atomic():
        item = outbox.enqueue(action)

    report = relayer.relay_once()  # mined with status 1: a call to an address without code "succeeds"

    item.refresh_from_db()
    assert report.txs_sent == 1 and report.confirmed == 0
    assert item.status == "failed" and item.error_code == "no_contract"

    Deployment.objects.filter(name="Directory").update(address=real)
    call_command("relay", retry_failed="no_contract")
    item.refresh_from_db()
    assert item.status == "confirmed" and world.directory.functions.isActiveGrantee(doctor).call()


@pytest.fixture
def manual_world(settings: SettingsWrapper) -> Iterator[World]:
    node = start_anvil()
    try:
        world = build_world(node, settings)
        world.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield world
    finally:
        node.stop()


def test_waiting_transactions_are_counted_once(manual_world: World) -> None:
    with transaction.atomic():
        outbox.enqueue(grant_item(manual_world))
        outbox.enqueue(RecordRootItem(root="0x" + "01" * 32, record_count=1, batch_id="0x" + "02" * 32))

    first = relayer.relay_once(receipt_timeout_s=0.1)
    again = relayer.relay_once(receipt_timeout_s=0.1)  # confirms twice in one run: each tx still one

    assert first.txs_sent == 2 and first.waiting_txs == 2
    assert again.waiting_txs == 2 and again.rebroadcast == 2  # each re-sent once, not once per pass
    manual_world.mine(1)
    assert relayer.relay_once().confirmed == 2


def grant(p: Personas) -> dict:
    body = {"grantee": p.bob.eth_address, "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD}
    response = p.client_for(p.alice).post("/api/consents", body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def shown(p: Personas, consent_id: str) -> dict:
    return p.client_for(p.alice).get(f"/api/consents/{consent_id}").json()


def test_grant_that_reached_no_contract_fails_its_consent_and_a_new_grant_is_accepted(
    personas: Personas, consent_handlers_on: None
) -> None:
    p = personas
    real = Deployment.objects.get(name="ConsentRegistry").address
    Deployment.objects.filter(name="ConsentRegistry").update(address=Account.create().address)
    first = grant(p)
    relayer.relay_once()
    failed = shown(p, first["id"])
    assert (failed["status"], failed["failure_reason"]) == ("failed", "no_contract")

    Deployment.objects.filter(name="ConsentRegistry").update(address=real)
    again = grant(p)  # not 409 change_pending: the failed grant no longer blocks its consent
    drain_outbox(timeout_s=60)

    assert shown(p, again["id"])["status"] == "active"
    assert Consent.objects.filter(status=ConsentStatus.ACTIVE).count() == 1
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {"confirmed"}


def test_grant_skipped_by_the_contract_names_the_error_and_a_new_grant_is_accepted(
    personas: Personas, consent_handlers_on: None, chain_clock: ChainClock
) -> None:
    p = personas
    first = grant(p)
    chain_clock.advance(django_settings.CONSENT_SIGNATURE_TTL_S + 60)  # the signature's deadline passes
    drain_outbox(timeout_s=60)

    failed = shown(p, first["id"])
    assert (failed["status"], failed["failure_reason"]) == ("failed", "DeadlineExpired")  # not 0x1ab7da6b
    assert OutboxItem.objects.get().error_code == "DeadlineExpired"

    chain_clock.back_to_wall_time()
    again = grant(p)
    drain_outbox(timeout_s=60)
    assert shown(p, again["id"])["status"] == "active"


def revoke(p: Personas, consent_id: str) -> dict:
    response = p.client_for(p.alice).post(
        f"/api/consents/{consent_id}/revoke", {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()


def test_revoke_that_reached_no_contract_is_failed_on_its_consent_and_can_be_sent_again(
    personas: Personas, consent_handlers_on: None
) -> None:
    p = personas
    consent_id = grant(p)["id"]
    drain_outbox(timeout_s=60)
    real = Deployment.objects.get(name="ConsentRegistry").address
    Deployment.objects.filter(name="ConsentRegistry").update(address=Account.create().address)
    revoke(p, consent_id)
    relayer.relay_once()
    failed = shown(p, consent_id)
    assert (failed["status"], failed["revoke_failure_reason"]) == ("active", "no_contract")

    Deployment.objects.filter(name="ConsentRegistry").update(address=real)
    revoke(p, consent_id)  # not 409 change_pending: the failed revoke is retried
    drain_outbox(timeout_s=60)
    assert shown(p, consent_id)["status"] == "revoked"
