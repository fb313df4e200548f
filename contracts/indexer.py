"""The one way in: follows all project contracts' logs into ChainEvent rows and hands each NEW event to
the handlers apps registered (in AppConfig.ready()), confirmation-depth and re-org aware.

Each range is one db transaction: events stored, handlers called (in block/log order), cursor moved.
A re-org is found by re-checking recorded block hashes; events from the fork block on are dropped and
rewind callbacks are called with that block, all in one transaction, before the new branch is read.
A node that is not the deployments' chain at all (contracts/chain_identity.py) raises WrongChain first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction

from contracts import chain_identity, client
from contracts.events import DecodedLog, decode_log
from contracts.models import ChainEvent, Deployment, IndexedBlock, IndexerCursor
from healthhash.errors import Unavailable

log = logging.getLogger(__name__)

EventHandler = Callable[[list[ChainEvent]], None]
RewindCallback = Callable[[int], None]

HASH_WINDOW = 256  # recorded block hashes kept per chain
# Every block this close to a range's end gets its hash recorded, so a re-org up to this deep is pinpointed
# to its exact fork block; deeper ones fall back to the recorded block below (still correct, re-reads more).
RECENT_BLOCKS_RECORDED = 64
TARGET_LOGS_PER_RANGE = 5_000  # adaptive range sizing aims at about this many logs per eth_getLogs
HEADER_BATCH = 500

_handlers: dict[tuple[str, str], list[EventHandler]] = {}
_rewinds: list[RewindCallback] = []


def register_handler(contract_name: str, event_name: str, handle_batch: EventHandler) -> None:
    """Call `handle_batch` with each run of new `contract_name.event_name` events (inside the range's
    transaction, so a failing handler rolls the range back and it is retried next pass)."""
    if handle_batch not in _handlers.setdefault((contract_name, event_name), []):
        _handlers[(contract_name, event_name)].append(handle_batch)


def register_rewind(callback: RewindCallback) -> None:
    """Call `callback(fork_block)` on a re-org: undo rows derived from blocks >= fork_block.

    Callbacks run in registration order inside the rewind's transaction: the relayer's (registered by
    ContractsConfig.ready) first, then the apps' (contracts is listed before them in INSTALLED_APPS).
    """
    if callback not in _rewinds:
        _rewinds.append(callback)


@dataclass
class SyncReport:
    from_block: int | None = None
    to_block: int | None = None
    head: int | None = None
    logs: int = 0
    new_events: int = 0
    ranges: int = 0
    reorg_fork: int | None = None
    seconds: float = 0.0


def _addresses(chain: int) -> dict[str, str]:
    """Lower-case address -> contract name of this chain's deployments."""
    return {
        address.lower(): name
        for name, address in Deployment.objects.filter(chain_id=chain).values_list("name", "address")
    }


def _headers(numbers: Iterable[int]) -> dict[int, tuple[str, int]]:
    """block number -> (hash, timestamp) for each block, fetched in batched requests; absent if missing."""
    numbers = sorted(set(numbers))
    headers: dict[int, tuple[str, int]] = {}
    for start in range(0, len(numbers), HEADER_BATCH):
        chunk = numbers[start : start + HEADER_BATCH]
        results = client.rpc_batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
        for number, block in zip(chunk, results, strict=True):
            if block:
                headers[number] = (block["hash"], int(block["timestamp"], 16))
    return headers


def _decode_all(raw_logs: list[dict[str, Any]], addresses: dict[str, str]) -> list[DecodedLog]:
    decoded = []
    for raw in raw_logs:
        name = addresses.get(raw["address"].lower())
        if name is None or raw.get("removed"):
            continue
        event = decode_log(raw, name)
        if event is not None:
            decoded.append(event)
    decoded.sort(key=lambda e: (e.block_number, e.log_index))
    return decoded


def _store_and_dispatch(chain: int, decoded: list[DecodedLog], times: dict[int, int]) -> list[ChainEvent]:
    """Insert the events not yet stored and hand those (only) to the handlers. Caller holds a transaction.

    The relayer (its receipts) and the indexer (block ranges) both come here. On PostgreSQL nothing else
    ordered them: both could read "not stored yet" for the same log and insert it, and the second failed
    on chain_event_unique, which ended `sync_chain --follow`. The chain's cursor row is the lock: whoever
    comes second waits for the first to commit, then reads its rows as stored. (SQLite's IMMEDIATE
    transactions already serialize writers.)"""
    if not decoded:
        return []
    list(IndexerCursor.objects.select_for_update().filter(chain_id=chain).values_list("pk", flat=True))
    existing = set(
        ChainEvent.objects.filter(
            chain_id=chain,
            block_number__gte=decoded[0].block_number,
            block_number__lte=decoded[-1].block_number,
        ).values_list("tx_hash", "log_index")
    )
    rows = [
        ChainEvent(
            chain_id=chain,
            contract=e.contract,
            address=e.address,
            event=e.event,
            args=e.args,
            block_number=e.block_number,
            block_hash=e.block_hash,
            block_time=datetime.fromtimestamp(times[e.block_number], tz=UTC)
            if e.block_number in times
            else None,
            tx_hash=e.tx_hash,
            log_index=e.log_index,
        )
        for e in decoded
        if (e.tx_hash, e.log_index) not in existing
    ]
    if rows:
        ChainEvent.objects.bulk_create(rows, batch_size=2_000)
        _dispatch(rows)
    return rows


def _dispatch(events: list[ChainEvent]) -> None:
    """Hand out consecutive runs of the same event type, keeping global block/log order."""
    start = 0
    while start < len(events):
        key = (events[start].contract, events[start].event)
        end = start + 1
        while end < len(events) and (events[end].contract, events[end].event) == key:
            end += 1
        for handler in _handlers.get(key, []):
            handler(events[start:end])
        start = end


def _record_hashes(chain: int, hashes: dict[int, str]) -> None:
    if not hashes:
        return
    IndexedBlock.objects.filter(chain_id=chain, number__in=list(hashes)).delete()
    IndexedBlock.objects.bulk_create(
        [IndexedBlock(chain_id=chain, number=n, hash=h) for n, h in hashes.items()]
    )
    cutoff = (
        IndexedBlock.objects.filter(chain_id=chain)
        .order_by("-number")
        .values_list("number", flat=True)[HASH_WINDOW : HASH_WINDOW + 1]
    )
    if cutoff:
        IndexedBlock.objects.filter(chain_id=chain, number__lte=cutoff[0]).delete()


def find_fork(chain: int) -> int | None:
    """The first orphaned block if a recorded block hash no longer matches the chain, else None."""
    recorded = list(
        IndexedBlock.objects.filter(chain_id=chain).order_by("-number").values_list("number", "hash")
    )
    if not recorded:
        return None
    top_number, top_hash = recorded[0]
    # Hashes chain: if the newest recorded block is unchanged, so is every block below it.
    if _headers([top_number]).get(top_number, ("",))[0] == top_hash:
        return None
    current = _headers(n for n, _ in recorded)
    for number, recorded_hash in recorded:
        if current.get(number, ("",))[0] == recorded_hash:
            return number + 1
    return 0  # deeper than the window (or a reset chain): everything is re-read


def rewind(chain: int, fork_block: int) -> None:
    """Drop what was indexed from `fork_block` on, call the rewind callbacks, move the cursor back."""
    with transaction.atomic():
        deleted, _ = ChainEvent.objects.filter(chain_id=chain, block_number__gte=fork_block).delete()
        IndexedBlock.objects.filter(chain_id=chain, number__gte=fork_block).delete()
        below = IndexedBlock.objects.filter(chain_id=chain).order_by("-number").first()
        IndexerCursor.objects.filter(chain_id=chain, last_block__gte=fork_block).update(
            last_block=fork_block - 1,
            last_block_hash=below.hash if below and below.number == fork_block - 1 else "",
        )
        for callback in _rewinds:
            callback(fork_block)
    log.warning("chain %s re-org: dropped %s events from block %s on", chain, deleted, fork_block)


def _cursor(chain: int) -> IndexerCursor:
    first = min(Deployment.objects.filter(chain_id=chain).values_list("block_number", flat=True))
    cursor, _ = IndexerCursor.objects.get_or_create(chain_id=chain, defaults={"last_block": first - 1})
    return cursor


def _index_range(
    chain: int, addresses: dict[str, str], start: int, end: int, *, move_cursor: bool = True
) -> tuple[int, int]:
    """Read, store and dispatch one block range; returns (logs read, new events).

    `move_cursor=False` (a rebuild's replay of the blocks not yet confirmed) stores and dispatches the
    events as the relayer's receipt ingestion does, leaving the cursor for the confirmed blocks."""
    raw_logs = client.rpc(
        "eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end), "address": list(addresses)}]
    )
    decoded = _decode_all(raw_logs, addresses)
    recent = range(max(start, end - RECENT_BLOCKS_RECORDED + 1), end + 1)
    headers = _headers({e.block_number for e in decoded} | set(recent))
    for event in decoded:
        if headers.get(event.block_number, ("",))[0] != event.block_hash:
            raise _RangeMoved(event.block_number)
    if end not in headers:
        raise _RangeMoved(end)
    with transaction.atomic():
        new = _store_and_dispatch(chain, decoded, {n: t for n, (_, t) in headers.items()})
        _record_hashes(chain, {n: h for n, (h, _) in headers.items()})
        if move_cursor:
            IndexerCursor.objects.filter(chain_id=chain).update(
                last_block=end, last_block_hash=headers[end][0]
            )
    return len(raw_logs), len(new)


class _RangeMoved(Exception):
    """The chain changed under a range being read (a re-org in progress); re-check next pass."""


def sync_chain(*, max_blocks: int | None = None) -> SyncReport:
    """Index from the cursor to head - CHAIN_CONFIRMATIONS (at most `max_blocks` blocks)."""
    started = time.perf_counter()
    report = SyncReport()
    chain = client.chain_id()
    addresses = _addresses(chain)
    if not addresses:
        return report
    # Another chain with this id (a reset dev chain) would look like a re-org from block 0 and drop every
    # indexed event: WrongChain stops the pass before anything is read or dropped.
    chain_identity.require_deployed_chain()
    report.reorg_fork = find_fork(chain)
    if report.reorg_fork is not None:
        rewind(chain, report.reorg_fork)
    cursor = _cursor(chain)
    report.head = client.latest_block()
    target = report.head - settings.CHAIN_CONFIRMATIONS
    if max_blocks is not None:
        target = min(target, cursor.last_block + max_blocks)
    report.from_block = cursor.last_block + 1
    try:
        _index_blocks(chain, addresses, report.from_block, target, report)
    except _RangeMoved as exc:
        log.warning("block %s changed while indexing; re-checking next pass", exc)
    report.seconds = time.perf_counter() - started
    return report


def _index_blocks(
    chain: int,
    addresses: dict[str, str],
    start: int,
    target: int,
    report: SyncReport,
    *,
    move_cursor: bool = True,
) -> None:
    """Index blocks start..target in adaptive ranges, adding to `report`; _RangeMoved stops it."""
    size = max(1, settings.INDEXER_MAX_BLOCK_RANGE)
    while start <= target:
        end = min(start + size - 1, target)
        try:
            logs, new = _index_range(chain, addresses, start, end, move_cursor=move_cursor)
        except client.ChainRpcError as exc:
            if size == 1:
                raise
            size = max(1, size // 4)  # the node refused the range (too many results): shrink and retry
            log.info("eth_getLogs %s-%s refused (%s); range now %s blocks", start, end, exc, size)
            continue
        report.logs += logs
        report.new_events += new
        report.ranges += 1
        report.to_block = end
        size = _next_size(size, logs)
        start = end + 1


# --- is the index current? (after a database restore it is not) ----------------------------------

# The index counts as behind the chain when it trails head - CHAIN_CONFIRMATIONS by more than this many
# blocks AND the blocks it has not read hold events of our contracts: the chain records changes the
# database has not seen (after a database restored to an older copy, a revocation mined since the backup
# would answer "allowed"). In normal operation it trails by the blocks of one pass (a few), and blocks
# without our events (other users of the chain, a test's clock) change no answer. A restore younger than
# this many blocks is not told from a slow pass: the README's "After a restore" says to index first.
MAX_INDEX_LAG_BLOCKS = 64
CURRENT_CACHE_S = 1.0  # a current index is re-confirmed at most this often per process (the hot path)
_current_until: dict[str, float] = {}  # rpc url -> monotonic time until which the index counts as current


class IndexBehind(Unavailable):
    """The index has not read changes the chain records (e.g. a restored database): answers would be stale."""

    code = "index_behind"


def index_position(chain: int) -> int | None:
    """The highest block the database has indexed: the cursor, or a block whose receipt the relayer
    indexed (it records their hashes) if higher. None before anything was indexed on this chain."""
    cursor = IndexerCursor.objects.filter(chain_id=chain).values_list("last_block", flat=True).first()
    recorded = IndexedBlock.objects.filter(chain_id=chain).aggregate(top=models.Max("number"))["top"]
    known = [number for number in (cursor, recorded) if number is not None]
    return max(known) if known else None


def stale_by() -> int | None:
    """Blocks by which the index trails the chain when it is known to be behind (see
    MAX_INDEX_LAG_BLOCKS), else None: current, nothing indexed yet, or the node unreachable."""
    try:
        chain = client.chain_id()
        position = index_position(chain)
        if position is None:
            return None
        target = client.latest_block() - settings.CHAIN_CONFIRMATIONS
        lag = target - position
        if lag <= MAX_INDEX_LAG_BLOCKS:
            return None
        addresses = list(_addresses(chain))
        try:
            logs = client.rpc(
                "eth_getLogs",
                [{"fromBlock": hex(position + 1), "toBlock": hex(target), "address": addresses}],
            )
        except client.ChainRpcError:
            return lag  # the node will not say what is in those blocks: assume the worst
    except client.ChainUnavailable:
        return None
    return lag if any(not raw.get("removed") for raw in logs) else None


def require_index_current() -> None:
    """Raise IndexBehind (503) while the index is known to be behind the chain (stale_by).

    Fail closed: a consent check must not answer from an index that has not seen the chain's last
    revocations. Unknown (node down, nothing indexed) counts as current, as before: the index is then
    all there is. A current verdict is kept CURRENT_CACHE_S per process, so the hot path rarely asks.
    """
    url = client.rpc_url()
    if _current_until.get(url, 0.0) > time.monotonic():
        return
    lag = stale_by()
    if lag is not None:
        raise IndexBehind(
            f"the consent index is {lag} blocks behind the chain (e.g. after a database restore); "
            "answers resume once the indexer has caught up"
        )
    _current_until[url] = time.monotonic() + CURRENT_CACHE_S


def forget_index_state() -> None:
    """Re-check the index on the next call (a test restored the database under this process)."""
    _current_until.clear()


class ChainMovedDuringReplay(Exception):
    """A block changed while a rebuild read it (a re-org in progress): nothing was kept; run it again."""


def replay(chain: int, start: int) -> SyncReport:
    """Store and dispatch every event from block `start` to head, as if new (a rebuild; the caller has
    dropped the stored events and derived rows from `start` on and holds the transaction).

    The cursor ends at head - CHAIN_CONFIRMATIONS as after a sync; the blocks above it are replayed too
    (without moving the cursor), because the relayer had already indexed its own mined receipts there and
    the answers must not step back. A later sync re-checks them by hash like any recorded block.
    """
    started = time.perf_counter()
    report = SyncReport(from_block=start)
    addresses = _addresses(chain)
    report.head = client.latest_block()
    target = report.head - settings.CHAIN_CONFIRMATIONS
    try:
        _index_blocks(chain, addresses, start, target, report)
        _index_blocks(chain, addresses, max(start, target + 1), report.head, report, move_cursor=False)
    except _RangeMoved as exc:
        raise ChainMovedDuringReplay(f"block {exc} changed during the rebuild; run it again") from exc
    report.seconds = time.perf_counter() - started
    return report


def contract_addresses(chain: int) -> dict[str, str]:
    """Lower-case address -> contract name of this chain's deployments (empty: nothing deployed here)."""
    return _addresses(chain)


def first_deployment_block(chain: int) -> int:
    """The lowest block any of this chain's deployments was made in: where indexing starts."""
    return min(Deployment.objects.filter(chain_id=chain).values_list("block_number", flat=True))


def rewind_callbacks() -> list[RewindCallback]:
    """The registered re-org callbacks, in the order a re-org calls them."""
    return list(_rewinds)


def _next_size(size: int, logs: int) -> int:
    if logs > TARGET_LOGS_PER_RANGE:
        return max(1, size // 2)
    if logs < TARGET_LOGS_PER_RANGE // 4:
        return min(settings.INDEXER_MAX_BLOCK_RANGE, size * 2)
    return size


def _normalize(value: Any) -> Any:
    """web3 receipts carry HexBytes and ints; the raw JSON-RPC shape is hex strings."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int):
        return hex(value)
    return value


def _raw_log(entry: Any) -> dict[str, Any]:
    return {
        "address": str(entry["address"]),
        "topics": [_normalize(t) for t in entry["topics"]],
        "data": _normalize(entry["data"]),
        "blockNumber": _normalize(entry["blockNumber"]),
        "blockHash": _normalize(entry["blockHash"]),
        "transactionHash": _normalize(entry["transactionHash"]),
        "logIndex": _normalize(entry["logIndex"]),
        "removed": entry.get("removed", False),
    }


@dataclass(frozen=True)
class ReceiptLogs:
    """A mined receipt's project-contract logs, decoded, with its block's time: ready to store."""

    chain: int
    logs: list[DecodedLog]
    block_time: int | None


def decode_receipt(receipt: Any) -> ReceiptLogs:
    """Decode one mined receipt's logs and fetch its block time; reads only (RPC and a deployments
    lookup), so a caller can do it before opening its write transaction."""
    chain = client.chain_id()
    decoded = _decode_all([_raw_log(entry) for entry in receipt["logs"]], _addresses(chain))
    if not decoded:
        return ReceiptLogs(chain, decoded, None)
    block_number = decoded[0].block_number
    headers = _headers([block_number])
    return ReceiptLogs(chain, decoded, headers[block_number][1] if block_number in headers else None)


def store_receipt(receipt_logs: ReceiptLogs) -> None:
    """Index decoded receipt logs now (idempotent): store the new events and hand them to the handlers."""
    chain, decoded = receipt_logs.chain, receipt_logs.logs
    if not decoded:
        return
    block_number, block_hash = decoded[0].block_number, decoded[0].block_hash
    times = {block_number: receipt_logs.block_time} if receipt_logs.block_time is not None else {}
    with transaction.atomic():
        _cursor(chain)  # so a first sync starts at the deployments, not after this receipt
        _rewind_if_replaced(chain, block_number, block_hash)
        _store_and_dispatch(chain, decoded, times)
        _record_hashes(chain, {block_number: block_hash})


def _rewind_if_replaced(chain: int, block_number: int, block_hash: str) -> None:
    """A receipt mined in a block whose number we recorded with another hash: the chain re-organised (a
    node restarted from an older state, say) and the indexer has not seen it yet. Rewind first, as the
    indexer would: recording the new hash over the old one would hide the fork from find_fork, and the
    events of the orphaned block (a grant the chain no longer holds) would stay for good."""
    replaced = (
        IndexedBlock.objects.filter(chain_id=chain, number=block_number).exclude(hash=block_hash).exists()
    )
    if not replaced:
        return
    fork = find_fork(chain)
    rewind(chain, block_number if fork is None else min(fork, block_number))


def ingest_receipt(receipt: Any) -> list[DecodedLog]:
    """Index one mined receipt's logs now (idempotent); returns all its decoded project-contract logs."""
    receipt_logs = decode_receipt(receipt)
    store_receipt(receipt_logs)
    return receipt_logs.logs
