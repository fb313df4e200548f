"""Outbox + relayer on a real anvil and a real database: one way out, crash-safe and idempotent."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.db import transaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pytest_django.fixtures import Settings as SettingsWrapper

from contracts import client, outbox, relayer
from contracts.messages import DirectoryAction, Domain, Grant, Revoke
from contracts.models import ChainEvent, ChainTx, OutboxItem
from contracts.node import AnvilNode, free_port, start_anvil
from contracts.relayer_kinds import (
    AuditRootItem,
    ConsentGrantItem,
    ConsentRevokeItem,
    DirectoryActionItem,
    RecordRootItem,
    RelayItem,
)
from tests.contracts.conftest import World, build_world

pytestmark = pytest.mark.django_db(transaction=True)


def new_patient() -> LocalAccount:
    return Account.from_key("0x" + secrets.token_hex(32))


def signed_grant(
    world: World,
    patient: LocalAccount,
    grantee: str,
    *,
    scope: str = "chart",
    version: int = 0,
    signer: LocalAccount | None = None,
) -> ConsentGrantItem:
    grant = Grant(
        patient=patient.address,
        grantee=grantee,
        scope=scope,
        purpose=0,
        expires_at=0,
        version=version,
        deadline=int(time.time()) + 3600,
    )
    payload = grant.typed_data(Domain(31337, world.registry.address))
    return ConsentGrantItem(grant, (signer or patient).sign_typed_data(full_message=payload).signature)


def signed_revoke(world: World, patient: LocalAccount, grantee: str, *, version: int) -> ConsentRevokeItem:
    revoke = Revoke(
        patient=patient.address,
        grantee=grantee,
        scope="chart",
        purpose=0,
        version=version,
        deadline=int(time.time()) + 3600,
    )
    payload = revoke.typed_data(Domain(31337, world.registry.address))
    return ConsentRevokeItem(revoke, patient.sign_typed_data(full_message=payload).signature)


def enqueue_grant(world: World, patient: LocalAccount, grantee: str, **kw: Any) -> OutboxItem:
    with transaction.atomic():
        return outbox.enqueue(signed_grant(world, patient, grantee, **kw))


def test_enqueue_rolled_back_with_the_callers_transaction_leaves_nothing_to_send(world: World) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue(signed_grant(world, new_patient(), world.doctors[0].address))
        raise RuntimeError("the caller's service failed after enqueueing")

    report = relayer.relay_once()

    assert OutboxItem.objects.count() == 0
    assert report.items_claimed == 0 and report.txs_sent == 0
    assert world.relayer_txs() == 0 and ChainTx.objects.count() == 0


def test_enqueue_with_an_existing_idempotency_key_returns_the_existing_item(world: World) -> None:
    item = signed_grant(world, new_patient(), world.doctors[0].address)
    first = outbox.enqueue(item)
    again = outbox.enqueue(item)
    assert again.pk == first.pk and OutboxItem.objects.count() == 1
    assert first.idempotency_key == f"consent.grant:{item.grant.consent_key}:0"


def test_enqueue_rejects_an_item_that_can_never_be_sent(world: World) -> None:
    item = signed_grant(world, new_patient(), world.doctors[0].address)
    with pytest.raises(outbox.BadOutboxItem, match="signature"):
        outbox.enqueue(ConsentGrantItem(item.grant, "0x00"))
    with pytest.raises(outbox.BadOutboxItem, match="expires_at does not fit uint64"):
        outbox.enqueue(ConsentGrantItem(replace(item.grant, expires_at=2**64), item.signature))

    class Unregistered(RelayItem):
        kind = "consent.nope"

        @property
        def payload(self) -> dict[str, Any]:
            return {}

        @property
        def idempotency_key(self) -> str:
            return "k2"

    with pytest.raises(outbox.BadOutboxItem, match="unknown outbox kind"):
        outbox.enqueue(Unregistered())
    assert OutboxItem.objects.count() == 0


def test_relayer_is_kicked_after_commit_only(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kick is replaced by a recorder (we observe WHEN it runs; the broker is not under test)."""
    kicks: list[int] = []
    monkeypatch.setattr(outbox, "kick_relayer", lambda: kicks.append(1))
    with transaction.atomic():
        outbox.enqueue(signed_grant(world, new_patient(), world.doctors[0].address))
        assert kicks == []
    assert kicks == [1]


def test_broker_failure_does_not_break_the_request(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake: the broker raising on publish (a fault we cannot cause with the embedded broker)."""
    from contracts import tasks

    def broken_delay(*_: Any, **__: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.relay_outbox, "delay", broken_delay)
    with transaction.atomic():
        outbox.enqueue(signed_grant(world, new_patient(), world.doctors[0].address))
    assert OutboxItem.objects.filter(status=OutboxItem.Status.PENDING).count() == 1


def test_batch_with_one_bad_item_fails_only_that_item_and_indexes_the_rest(world: World) -> None:
    from contracts import indexer

    seen: list[ChainEvent] = []
    indexer.register_handler("ConsentRegistry", "ConsentGranted", seen.extend)
    good = [enqueue_grant(world, new_patient(), world.doctors[i % 2].address) for i in range(4)]
    unregistered = Account.create().address
    bad = enqueue_grant(world, new_patient(), unregistered)

    report = relayer.relay_once()

    assert report.txs_sent == 1 and report.confirmed == 4 and report.failed == 1
    bad.refresh_from_db()
    assert bad.status == "failed" and bad.error_code == "GranteeNotRegistered"
    for item in good:
        item.refresh_from_db()
        assert item.status == "confirmed" and item.confirmed_block == bad.confirmed_block
        patient = item.payload["message"]["patient"]
        assert world.registry.functions.isAllowed(
            patient, item.payload["message"]["grantee"], b"\0" * 32, b"\0" * 32, 0
        ).call()
    # The receipt went to the indexer at once: the handler already has the granted events.
    assert sorted(e.args["patient"] for e in seen) == sorted(i.payload["message"]["patient"] for i in good)
    assert ChainEvent.objects.filter(event="ConsentSkipped").count() == 1


def test_grant_then_revoke_both_confirm(world: World) -> None:
    patient = new_patient()
    enqueue_grant(world, patient, world.doctors[0].address)
    relayer.relay_once()
    with transaction.atomic():
        revoke = outbox.enqueue(signed_revoke(world, patient, world.doctors[0].address, version=1))
    report = relayer.relay_once()
    revoke.refresh_from_db()
    assert report.confirmed == 1 and revoke.status == "confirmed"
    assert ChainEvent.objects.filter(event="ConsentRevoked", args__patient=patient.address).count() == 1


def test_replayed_signature_fails_with_bad_version(world: World) -> None:
    patient = new_patient()
    item = signed_grant(world, patient, world.doctors[0].address)
    with transaction.atomic():
        outbox.enqueue(item)
        replay = outbox.enqueue(item, idempotency_key="replay")  # its own key would dedupe it
    relayer.relay_once()
    replay.refresh_from_db()
    assert replay.status == "failed" and replay.error_code == "BadVersion"
    assert OutboxItem.objects.filter(status="confirmed").count() == 1


def test_killed_after_broadcast_then_rerun_confirms_exactly_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake only for the crash: the hook right after broadcast raises, as if the process died there."""
    items = [enqueue_grant(world, new_patient(), world.doctors[0].address) for _ in range(3)]

    def killed(chain_tx: ChainTx) -> None:
        raise KeyboardInterrupt("killed after broadcast")

    monkeypatch.setattr(relayer, "_after_broadcast", killed)
    with pytest.raises(KeyboardInterrupt):
        relayer.relay_once()
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {"sent"}
    assert ChainTx.objects.get().status == "signed"

    monkeypatch.undo()
    report = relayer.relay_once()

    assert report.confirmed == 3 and report.txs_sent == 0
    assert ChainTx.objects.count() == 1 and ChainTx.objects.get().status == "confirmed"
    assert world.relayer_txs() == 1  # one transaction on chain, not two
    assert ChainEvent.objects.filter(event="ConsentGranted").count() == 3
    for item in items:
        item.refresh_from_db()
        assert item.status == "confirmed" and item.attempts == 1


def test_killed_before_broadcast_rebroadcasts_the_same_signed_bytes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake only for the crash: the broadcast raises once, as if the process died after persisting."""
    enqueue_grant(world, new_patient(), world.doctors[0].address)

    def killed(chain_tx: ChainTx) -> None:
        raise KeyboardInterrupt("killed before broadcast")

    monkeypatch.setattr(relayer, "_broadcast", killed)
    with pytest.raises(KeyboardInterrupt):
        relayer.relay_once()
    signed = ChainTx.objects.get()
    assert world.relayer_txs() == 0  # nothing reached the node

    monkeypatch.undo()
    report = relayer.relay_once()

    assert report.rebroadcast == 1 and report.confirmed == 1
    assert ChainTx.objects.get().tx_hash == signed.tx_hash and world.relayer_txs() == 1


def test_node_down_keeps_items_pending_and_sends_them_once_it_is_back(
    world: World, settings: SettingsWrapper
) -> None:
    rpc_url = settings.ETH_RPC_URL
    settings.ETH_RPC_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client.reset_caches()
    item = enqueue_grant(world, new_patient(), world.doctors[0].address)

    down = relayer.relay_once()

    item.refresh_from_db()
    assert down.unavailable and item.status == "pending" and item.attempts == 0
    assert ChainTx.objects.count() == 0

    settings.ETH_RPC_URL = rpc_url
    back = relayer.relay_once()

    item.refresh_from_db()
    assert not back.unavailable and back.confirmed == 1 and item.status == "confirmed"


def test_only_one_relayer_runs_at_a_time(world: World) -> None:
    enqueue_grant(world, new_patient(), world.doctors[0].address)
    with relayer.relayer_lease():
        report = relayer.relay_once()
    assert report.busy and report.txs_sent == 0
    assert relayer.relay_once().confirmed == 1


def test_batch_over_the_gas_share_is_split(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relayer, "BLOCK_GAS_SHARE", 0.004)  # ~120k gas of a 30M block: about 2 grants a tx
    for _ in range(6):
        enqueue_grant(world, new_patient(), world.doctors[0].address)
    report = relayer.relay_once()
    assert report.confirmed == 6 and report.txs_sent >= 3
    assert world.relayer_txs() == report.txs_sent


def test_directory_action_confirms_or_fails_with_the_custom_error(world: World) -> None:
    new_doctor = Account.create().address

    def action(nonce: int) -> DirectoryActionItem:
        message = DirectoryAction(
            op=2,
            hospital_id=world.hospital_id,
            subject=new_doctor,
            nonce=nonce,
            deadline=int(time.time()) + 3600,
        )
        payload = message.typed_data(Domain(31337, world.directory.address))
        signature = world.hospital_admin.sign_typed_data(full_message=payload).signature
        return DirectoryActionItem(message, world.hospital_admin.address, signature)

    nonce = world.directory.functions.nonces(world.hospital_admin.address).call()
    with transaction.atomic():
        ok = outbox.enqueue(action(nonce))
        stale = outbox.enqueue(action(nonce), idempotency_key="d2")  # the same nonce again, on purpose
    relayer.relay_once()
    ok.refresh_from_db()
    stale.refresh_from_db()
    assert ok.status == "confirmed" and world.directory.functions.isActiveGrantee(new_doctor).call()
    assert stale.status == "failed" and stale.error_code == "BadNonce"
    assert ChainEvent.objects.filter(event="DoctorRegistered", args__doctor=new_doctor).count() == 1


def test_record_root_resend_confirms_and_another_root_for_the_batch_fails(world: World) -> None:
    batch_id = "0x" + "ab" * 32

    def anchor(root: str, key: str) -> OutboxItem:
        with transaction.atomic():
            item = RecordRootItem(root=root, record_count=100, batch_id=batch_id)
            return outbox.enqueue(item, idempotency_key=key)

    first = anchor("0x" + "01" * 32, "r1")
    relayer.relay_once()
    again, other = anchor("0x" + "01" * 32, "r2"), anchor("0x" + "02" * 32, "r3")
    relayer.relay_once()
    relayer.relay_once()
    for item in (first, again, other):
        item.refresh_from_db()
    assert first.status == "confirmed" and again.status == "confirmed"
    assert other.status == "failed" and other.error_code == "RecordRootMismatch"
    assert world.anchors.functions.recordRootOf(bytes.fromhex("ab" * 32)).call() == bytes.fromhex("01" * 32)
    assert ChainEvent.objects.filter(event="RecordRootAnchored").count() == 1


def test_audit_root_anchor_confirms(world: World) -> None:
    with transaction.atomic():
        item = outbox.enqueue(AuditRootItem(root="0x" + "cd" * 32, head_count=7, batch_id="0x" + "01" * 32))
    relayer.relay_once()
    item.refresh_from_db()
    assert item.status == "confirmed"
    event = ChainEvent.objects.get(event="AuditRootAnchored")
    assert event.args == {"batchId": "0x" + "01" * 32, "root": "0x" + "cd" * 32, "headCount": 7}


def test_relay_before_any_deployment_reports_unavailable_and_keeps_items(
    anvil: AnvilNode, settings: SettingsWrapper
) -> None:
    from tests.contracts.conftest import use_node

    use_node(settings, anvil.rpc_url)
    item = outbox.enqueue(RecordRootItem(root="0x" + "02" * 32, record_count=1, batch_id="0x" + "03" * 32))
    report = relayer.relay_once()
    item.refresh_from_db()
    assert report.unavailable and item.status == "pending"


@pytest.fixture
def manual_mining_world(settings: SettingsWrapper) -> Iterator[World]:
    """A world on its own anvil whose blocks are mined only when the test says so."""
    node = start_anvil()
    try:
        world = build_world(node, settings)
        world.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield world
    finally:
        node.stop()


def test_transaction_reverted_when_mined_fails_its_item_with_the_custom_error(
    manual_mining_world: World,
) -> None:
    world = manual_mining_world
    deadline = world.w3.eth.get_block("latest")["timestamp"] + 600
    nonce = world.directory.functions.nonces(world.hospital_admin.address).call()
    action = DirectoryAction(
        op=2, hospital_id=world.hospital_id, subject=Account.create().address, nonce=nonce, deadline=deadline
    )
    payload = action.typed_data(Domain(31337, world.directory.address))
    signature = world.hospital_admin.sign_typed_data(full_message=payload).signature
    with transaction.atomic():
        item = outbox.enqueue(DirectoryActionItem(action, world.hospital_admin.address, signature))

    sent = relayer.relay_once(receipt_timeout_s=0.2)  # estimated fine, then waits in the mempool
    assert sent.txs_sent == 1 and sent.waiting_txs == 1
    world.w3.provider.make_request("evm_setNextBlockTimestamp", [deadline + 1])  # type: ignore[arg-type]
    world.mine(1)
    settled = relayer.relay_once()

    item.refresh_from_db()
    assert settled.failed == 1 and item.status == "failed" and item.error_code == "DeadlineExpired"
    assert ChainTx.objects.get().status == "failed"


def test_relay_command_sends_and_reports(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    enqueue_grant(world, new_patient(), world.doctors[0].address)
    call_command("relay")
    assert "ok: 1 items, 1 txs, 1 confirmed" in capsys.readouterr().out
