"""The indexer on a real anvil: resume, idempotency, confirmation depth, re-orgs, handler transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from eth_account import Account
from pytest_django.fixtures import Settings as SettingsWrapper

from bench.chain import benchmark_indexer
from contracts import indexer
from contracts.models import ChainEvent, IndexerCursor
from contracts.node import start_anvil
from tests.contracts.conftest import ZERO, World, build_world
from tests.fixtures.chain import transact

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A handler that remembers every event it is handed, and rewinds it is told about."""

    def __init__(self) -> None:
        self.events: list[ChainEvent] = []
        self.rewinds: list[int] = []

    def __call__(self, batch: list[ChainEvent]) -> None:
        self.events.extend(batch)

    def doctors(self) -> list[str]:
        return [e.args["doctor"] for e in self.events if e.event == "DoctorRegistered"]


@pytest.fixture
def recorder() -> Recorder:
    recorded = Recorder()
    for event in ("HospitalRegistered", "DoctorRegistered", "DoctorDeactivated"):
        indexer.register_handler("Directory", event, recorded)
    indexer.register_rewind(recorded.rewinds.append)
    return recorded


def register_doctor(world: World) -> str:
    doctor = Account.create().address
    transact(
        world.directory.functions.execute((2, world.hospital_id, doctor, ZERO, 0, 0)),
        world.hospital_admin.address,
    )
    return doctor


def test_events_are_decoded_with_checksummed_addresses_hex_bytes_and_block_time(
    world: World, recorder: Recorder
) -> None:
    report = indexer.sync_chain()

    assert report.new_events >= 3
    doctor_events = ChainEvent.objects.filter(event="DoctorRegistered").order_by("block_number")
    assert [e.args for e in doctor_events] == [
        {"doctor": d.address, "hospitalId": "0x" + world.hospital_id.hex()} for d in world.doctors
    ]
    first = doctor_events[0]
    assert first.contract == "Directory" and first.address == world.directory.address
    assert first.block_time is not None and first.block_hash == "0x" + world.w3.eth.get_block(
        first.block_number
    )["hash"].hex().removeprefix("0x")
    # Handlers get events in block/log order.
    assert [(e.block_number, e.log_index) for e in recorder.events] == sorted(
        (e.block_number, e.log_index) for e in recorder.events
    )


def test_second_sync_resumes_from_the_cursor_and_reads_nothing_new(world: World, recorder: Recorder) -> None:
    indexer.sync_chain()
    handed_out = len(recorder.events)

    again = indexer.sync_chain()

    assert again.logs == 0 and again.new_events == 0 and len(recorder.events) == handed_out
    assert IndexerCursor.objects.get().last_block == world.w3.eth.block_number
    doctor = register_doctor(world)
    assert indexer.sync_chain().new_events == 1 and recorder.doctors()[-1] == doctor


def test_reingesting_the_same_logs_creates_no_duplicates_and_hands_out_nothing(
    world: World, recorder: Recorder
) -> None:
    indexer.sync_chain()
    stored, handed_out = ChainEvent.objects.count(), len(recorder.events)
    IndexerCursor.objects.update(last_block=0)  # force the same blocks to be read again

    again = indexer.sync_chain()

    assert again.logs >= stored and again.new_events == 0
    assert ChainEvent.objects.count() == stored and len(recorder.events) == handed_out


def test_ingest_receipt_then_sync_hands_each_event_out_once(world: World, recorder: Recorder) -> None:
    indexer.sync_chain()
    doctor = Account.create().address
    receipt = transact(
        world.directory.functions.execute((2, world.hospital_id, doctor, ZERO, 0, 0)),
        world.hospital_admin.address,
    )

    decoded = indexer.ingest_receipt(receipt)  # a web3 receipt (HexBytes) works as well as a raw one
    indexer.ingest_receipt(receipt)
    indexer.sync_chain()

    assert [d.event for d in decoded] == ["DoctorRegistered"]
    assert recorder.doctors().count(doctor) == 1
    assert ChainEvent.objects.filter(args__doctor=doctor).count() == 1


def test_confirmation_depth_holds_back_the_last_blocks(
    world: World, recorder: Recorder, settings: SettingsWrapper
) -> None:
    indexer.sync_chain()  # caught up with the world's setup
    settings.CHAIN_CONFIRMATIONS = 2
    doctor = register_doctor(world)

    held = indexer.sync_chain()

    assert doctor not in recorder.doctors() and held.new_events == 0
    assert held.head == world.w3.eth.block_number
    world.mine(1)
    assert indexer.sync_chain().new_events == 0  # one confirmation is not two
    world.mine(1)
    assert indexer.sync_chain().new_events == 1 and recorder.doctors()[-1] == doctor


def test_a_failing_handler_rolls_back_its_range_and_it_is_retried(world: World, recorder: Recorder) -> None:
    def broken(batch: list[ChainEvent]) -> None:
        raise RuntimeError("handler bug")

    indexer.register_handler("Directory", "HospitalRegistered", broken)
    with pytest.raises(RuntimeError):
        indexer.sync_chain()
    assert ChainEvent.objects.count() == 0
    assert IndexerCursor.objects.get().last_block < world.w3.eth.block_number

    indexer._handlers[("Directory", "HospitalRegistered")].remove(broken)
    assert indexer.sync_chain().new_events >= 3


def test_small_block_ranges_give_the_same_events(
    world: World, recorder: Recorder, settings: SettingsWrapper
) -> None:
    settings.INDEXER_MAX_BLOCK_RANGE = 1
    report = indexer.sync_chain()
    assert report.to_block is not None and report.from_block is not None
    assert report.ranges == report.to_block - report.from_block + 1 > 1
    assert recorder.doctors() == [d.address for d in world.doctors]


@pytest.fixture
def own_world(settings: SettingsWrapper) -> Iterator[World]:
    """A world on its own anvil, since this test rewrites the chain's history."""
    node = start_anvil()
    try:
        yield build_world(node, settings)
    finally:
        node.stop()


def test_reorg_drops_orphaned_events_rewinds_from_the_fork_and_indexes_the_new_branch(
    own_world: World, recorder: Recorder
) -> None:
    world = own_world
    indexer.sync_chain()
    fork_block = world.w3.eth.block_number + 1
    snapshot = world.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan = register_doctor(world)
    world.mine(2)
    indexer.sync_chain()
    assert orphan in recorder.doctors()

    world.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    world.mine(1)  # an empty block where the orphan's block was: same number, another hash
    replacement = register_doctor(world)
    world.mine(2)
    report = indexer.sync_chain()

    assert report.reorg_fork == fork_block and recorder.rewinds == [fork_block]
    assert not ChainEvent.objects.filter(args__doctor=orphan).exists()
    assert ChainEvent.objects.filter(args__doctor=replacement).count() == 1
    assert recorder.doctors()[-1] == replacement
    assert IndexerCursor.objects.get().last_block == world.w3.eth.block_number
    assert indexer.sync_chain().reorg_fork is None  # settled


def test_a_receipt_mined_where_an_orphaned_block_was_rewinds_before_it_is_stored(
    own_world: World, recorder: Recorder
) -> None:
    """The relayer's receipt is the first to see a re-org (a node restarted from an older state): its block
    number was recorded with another hash. Stored over it, the new hash hid the fork from find_fork and
    the orphaned block's events stayed (a grant the chain no longer holds, still active)."""
    world = own_world
    indexer.sync_chain()
    fork_block = world.w3.eth.block_number + 1
    snapshot = world.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan = Account.create().address
    indexer.ingest_receipt(
        transact(
            world.directory.functions.execute((2, world.hospital_id, orphan, ZERO, 0, 0)),
            world.hospital_admin.address,
        )
    )
    assert orphan in recorder.doctors()

    world.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    replacement = Account.create().address
    receipt = transact(
        world.directory.functions.execute((2, world.hospital_id, replacement, ZERO, 0, 0)),
        world.hospital_admin.address,
    )
    assert receipt["blockNumber"] == fork_block  # the same number, another block
    indexer.ingest_receipt(receipt)

    assert recorder.rewinds == [fork_block]
    assert not ChainEvent.objects.filter(args__doctor=orphan).exists()
    assert ChainEvent.objects.filter(args__doctor=replacement).count() == 1
    assert indexer.sync_chain().reorg_fork is None  # nothing left for the indexer to find


def test_benchmark_helper_reports_a_rate() -> None:
    figures = benchmark_indexer(300)
    assert figures["events"] >= 300 and figures["events_per_s"] > 0
    assert ChainEvent.objects.count() == 0  # the benchmark rolls its rows back


def test_sync_command_reports_new_events(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    call_command("sync_chain")
    assert "new events" in capsys.readouterr().out and ChainEvent.objects.exists()


def _until_someone_waits_for_a_lock() -> None:
    """PostgreSQL: until another session waits on a row lock (the second writer is at its door). SQLite has
    no such view; its IMMEDIATE transactions wait at BEGIN, so a moment is all the ordering needs."""
    if connection.vendor != "postgresql":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the second writer never waited for a lock")


def test_the_relayer_and_the_indexer_storing_one_log_at_once_store_and_hand_it_out_once(
    world: World, recorder: Recorder
) -> None:
    """The indexer has inserted a range's events and runs their handlers (not committed) when the relayer
    ingests the receipt of the same transaction. Before the cursor-row lock, on PostgreSQL, the relayer read
    the log as not stored, inserted it, and failed on chain_event_unique once the indexer committed."""
    indexer.sync_chain()
    doctor = Account.create().address
    receipt = transact(
        world.directory.functions.execute((2, world.hospital_id, doctor, ZERO, 0, 0)),
        world.hospital_admin.address,
    )
    inside, release = threading.Event(), threading.Event()

    def hold_the_indexer(batch: list[ChainEvent]) -> None:
        if threading.current_thread().name == "indexer":
            inside.set()
            release.wait(30)

    indexer.register_handler("Directory", "DoctorRegistered", hold_the_indexer)
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    sync = threading.Thread(target=run, args=(indexer.sync_chain,), name="indexer")
    sync.start()
    assert inside.wait(30)
    ingest = threading.Thread(target=run, args=(lambda: indexer.ingest_receipt(receipt),), name="relayer")
    ingest.start()
    _until_someone_waits_for_a_lock()
    release.set()
    sync.join(60)
    ingest.join(60)

    assert errors == []
    assert recorder.doctors().count(doctor) == 1
    assert ChainEvent.objects.filter(args__doctor=doctor).count() == 1
