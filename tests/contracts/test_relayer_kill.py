"""The relayer lease: short, renewed while a run works, fenced where signed work is persisted, and a relayer
killed with SIGKILL (a real `kill -9` of a `manage.py relay --follow` process) blocks the next one only
until its lease lapses: nothing lost, nothing sent twice."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from eth_account import Account

from access.consent import services as consent_services
from access.models import Consent, ConsentStatus, KeyKind, Role, User
from contracts import client, lease, relayer
from contracts.models import ChainTx, OutboxItem, RelayerState
from healthhash.database_url import current_database_url
from tests.conftest import Personas
from tests.contracts.conftest import World
from tests.contracts.test_outbox_relayer import enqueue_grant, new_patient

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_S = 3.0  # the relayer processes' RELAYER_LEASE_S: short, so the test is too
BATCH = 10  # RELAYER_BATCH_SIZE of the relayer processes: one transaction per run of 10 grants
GRANTS = 30
RESUME_WITHIN_S = 3.0  # after the dead relayer's lease lapses


# --- in-process: the lease's log line, heartbeat and fence ----------------------------------------


def test_a_relayer_that_finds_the_lease_held_logs_who_holds_it_and_until_when(
    world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease, "_held_logged", {})
    enqueue_grant(world, new_patient(), world.doctors[0].address)
    with caplog.at_level("INFO", logger="contracts.lease"), relayer.relayer_lease():
        state = RelayerState.objects.get(pk=1)
        report = relayer.relay_once()
    holder, until = state.lease_owner, state.lease_until
    assert report.busy and report.txs_sent == 0 and until is not None
    assert holder.split(":")[1] == str(os.getpid())  # host:pid:token names the process
    [line] = [r.getMessage() for r in caplog.records if "held by" in r.getMessage()]
    assert holder in line and until.isoformat(timespec="milliseconds") in line


def test_lease_is_short_and_a_heartbeat_keeps_a_long_run_holding_it(settings: Any) -> None:
    settings.RELAYER_LEASE_S = 0.6
    owner = lease.new_owner()
    assert lease.acquire(owner)
    try:
        until = RelayerState.objects.get(pk=1).lease_until
        assert until is not None and (until - timezone.now()).total_seconds() <= 0.6
        with lease.holding(owner):
            for _ in range(8):  # 1.6 s of work, well past the 0.6 s lease, renewed between steps
                time.sleep(0.2)
                lease.heartbeat()
                assert not lease.acquire(lease.new_owner())
    finally:
        lease.release(owner)
    other = lease.new_owner()
    assert lease.acquire(other)
    lease.release(other)


def test_a_run_whose_lease_was_taken_over_signs_nothing_and_stops(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake on purpose: "this process stalled past its lease while another relayer took it over" needs
    # a stall at one exact point (just before signing); the takeover itself is the real conditional update.
    item = enqueue_grant(world, new_patient(), world.doctors[0].address)
    real_fees: Callable[[], dict[str, int]] = relayer._fees

    def fees_after_a_takeover() -> dict[str, int]:
        RelayerState.objects.filter(pk=1).update(lease_until=timezone.now())  # our lease lapses...
        time.sleep(0.01)
        assert lease.acquire("other-host:4242:token")  # ...and another relayer takes it over
        return real_fees()

    monkeypatch.setattr(relayer, "_fees", fees_after_a_takeover)
    report = relayer.relay_once()

    item.refresh_from_db()
    assert report.busy and report.txs_sent == 0
    assert item.status == "pending" and item.attempts == 0 and ChainTx.objects.count() == 0
    assert world.relayer_txs() == 0
    assert RelayerState.objects.get(pk=1).lease_owner == "other-host:4242:token"  # not released by us

    monkeypatch.setattr(relayer, "_fees", real_fees)
    lease.release("other-host:4242:token")
    assert relayer.relay_once().confirmed == 1


# --- a real kill -9 of a relayer process ----------------------------------------------------------


def _signed_grants(personas: Personas, count: int) -> list[Consent]:
    """`count` grants to bob, each signed by a new wallet patient, accepted by the consent service."""
    signed = []
    for index in range(count):
        account = Account.create()
        patient = User(
            username=f"kill-{index}", role=Role.PATIENT, eth_address=account.address, key_kind=KeyKind.WALLET
        )
        patient.set_unusable_password()
        patient.save()
        typed_data = consent_services.prepare_grant(
            patient=patient,
            grantee=str(personas.bob.eth_address),
            scope="chart",
            purpose="TREATMENT",
            expires_at=None,
        )
        signature = "0x" + account.sign_typed_data(full_message=typed_data).signature.hex()
        signed.append(consent_services.SignedGrant(patient, typed_data, signature))
    accepted = consent_services.submit_signed_grants(grants=signed)
    assert all(isinstance(consent, Consent) for consent in accepted), accepted
    return [consent for consent in accepted if isinstance(consent, Consent)]


def _relayer_process(log_path: Path) -> subprocess.Popen[bytes]:
    """`manage.py relay --follow` in its own process, on this test's database, chain and relayer key."""
    env = os.environ | {
        "DATABASE_URL": current_database_url(),
        "ETH_RPC_URL": settings.ETH_RPC_URL,
        "RELAYER_PRIVATE_KEY": settings.RELAYER_PRIVATE_KEY,
        "HEALTHHASH_KEK": settings.KEY_ENCRYPTION_KEYS,
        "HEALTHHASH_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_BROKER_URL": "memory://",
        "CHAIN_CONFIRMATIONS": "0",
        "RELAYER_LEASE_S": str(LEASE_S),
        "RELAYER_BATCH_SIZE": str(BATCH),
        "LOG_LEVEL": "INFO",
    }
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "relay", "--follow", "--interval", "0.1"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_for(what: str, condition: Callable[[], Any], *, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _in_node(w3: Any, tx_hash: str) -> bool:
    return w3.provider.make_request("eth_getTransactionByHash", [tx_hash]).get("result") is not None


def _lease_holder_pid() -> int | None:
    owner = RelayerState.objects.filter(pk=1).values_list("lease_owner", flat=True).first()
    return int(owner.split(":")[1]) if owner else None


@pytest.fixture
def manual_mining(personas: Personas) -> Iterator[Callable[[], object]]:
    """The session anvil mines only when told (so a relayer run waits for its receipt, holding the
    lease, as on a real chain between blocks); automine is back on afterwards."""
    w3 = personas.chain.w3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield lambda: w3.provider.make_request("anvil_mine", ["0x1"])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


@pytest.fixture
def relayer_processes(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        started.append(_relayer_process(tmp_path / f"{name}.log"))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.slow
def test_kill_9_of_a_relayer_mid_run_loses_nothing_sends_nothing_twice_and_the_next_resumes_in_seconds(
    personas: Personas,
    manual_mining: Callable[[], object],
    relayer_processes: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    w3, registry = personas.chain.w3, personas.chain.registry
    first_block = w3.eth.block_number + 1
    consents = _signed_grants(personas, GRANTS)

    first = relayer_processes("first")
    _wait_for("the first relayer's first transaction", lambda: ChainTx.objects.count() == 1)
    # The relayer persists a signed transaction before it broadcasts it: mine only once the node holds it,
    # or the block comes out empty and, with automine off, the first run waits for a block forever.
    _wait_for("the node to hold the first transaction", lambda: _in_node(w3, ChainTx.objects.get().tx_hash))
    manual_mining()  # its first batch is mined; its next run signs the second and waits for a block
    _wait_for("the second transaction", lambda: ChainTx.objects.count() == 2)
    assert ChainTx.objects.filter(status="confirmed").count() == 1 and _lease_holder_pid() == first.pid

    second = relayer_processes("second")
    second_log = tmp_path / "second.log"
    _wait_for("the second relayer to find the lease held", lambda: "held by" in second_log.read_text())
    time.sleep(2 * LEASE_S)  # the first run outlasts its lease twice over: its heartbeat keeps it
    assert _lease_holder_pid() == first.pid and ChainTx.objects.count() == 2

    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    lease_until = RelayerState.objects.get(pk=1).lease_until
    assert lease_until is not None
    lapses_at = lease_until.timestamp()
    manual_mining()  # the dead relayer's broadcast transaction is mined; only the chain knows
    w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]

    def progress() -> bool:
        return ChainTx.objects.exclude(status="signed").count() > 1 or ChainTx.objects.count() > 2

    resumed_at = _wait_for("the second relayer to resume", lambda: progress() and time.time())
    _wait_for(
        "every grant to be mined",
        lambda: not OutboxItem.objects.exclude(status="confirmed").exists(),
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    log_text = second_log.read_text()
    print(f"resumed {resumed_at - lapses_at:+.2f} s after the dead relayer's lease lapsed")

    # The second relayer waited for the lease, said whose it was and until when, then took over in seconds.
    assert f":{first.pid}:" in log_text and "until" in log_text and "takes over" in log_text
    assert lapses_at - 0.05 <= resumed_at <= lapses_at + RESUME_WITHIN_S, (resumed_at - lapses_at, log_text)
    # Nothing lost: every consent is active; nothing twice: each item signed once, each tx once, and
    # the relayer key sent exactly the transactions on record.
    assert set(Consent.objects.filter(pk__in=[c.pk for c in consents]).values_list("status", flat=True)) == {
        ConsentStatus.ACTIVE
    }
    assert set(OutboxItem.objects.values_list("attempts", flat=True)) == {1}
    hashes = list(ChainTx.objects.values_list("tx_hash", flat=True))
    assert len(hashes) == len(set(hashes)) == GRANTS // BATCH
    assert set(ChainTx.objects.values_list("status", flat=True)) == {"confirmed"}
    assert w3.eth.get_transaction_count(client.relayer_account().address) == len(hashes)
    granted = collections.Counter(
        "0x" + bytes(event.args.consentId).hex()
        for event in registry.events.ConsentGranted().get_logs(from_block=first_block)
    )
    assert {key: granted[key] for key in {c.consent_key for c in consents}} == {
        c.consent_key: 1 for c in consents
    }
