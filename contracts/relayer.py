"""The one way out: drains the outbox in batches, signs with the relayer key, and tracks every item
pending -> sent -> confirmed | failed.

Crash-safe order: build and SIGN the transaction, persist ChainTx (raw bytes, hash, nonce) and move its
items to `sent` in ONE db transaction, THEN broadcast. After a crash, `sent` items whose ChainTx has no
receipt are re-broadcast with the same raw bytes (same hash), so nothing is lost or sent twice.
Only one relayer runs at a time: a short lease on the RelayerState singleton, taken by a conditional update,
renewed between steps and checked where signed transactions are persisted (contracts/lease.py).
A run starts by checking that the node is the deployments' chain (contracts/chain_identity.py), and an
item is confirmed only with proof that our contract ran (its kind's events, or code at the target).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from contracts import chain_identity, client, indexer, lease, outbox, rebuild
from contracts.events import decode_revert, encode_call
from contracts.models import ChainTx, OutboxItem, RelayerState
from contracts.relayer_kinds import BadItem, Outcome, RelayKind, get_kind

log = logging.getLogger(__name__)

RECEIPT_TIMEOUT_S = 30.0
RECEIPT_POLL_S = 0.05
RECEIPT_FIRST_POLL_S = 0.002
NONCE_CHECK_S = 1.0  # while receipts are awaited, how often the sender's nonce is asked for
GAS_HEADROOM = 1.25  # estimate * headroom + fixed margin: state may change between estimate and mining
GAS_MARGIN = 20_000
BATCH_BASE_GAS = 60_000  # transaction base + call overhead of a batch, above the per-item bounds
BLOCK_GAS_SHARE = 0.8  # a batch must fit in this share of the block gas limit, else it is split


@dataclass
class RelayReport:
    items_claimed: int = 0
    txs_sent: int = 0
    rebroadcast: int = 0
    confirmed: int = 0
    failed: int = 0
    waiting_txs: int = 0
    unavailable: bool = False
    busy: bool = False
    wrong_chain: str = ""  # why the node is not the deployments' chain; nothing was sent or settled
    index_behind: int = 0  # blocks the index trailed the chain by; nothing was sent (see _index_caught_up)
    seconds: float = 0.0
    tx_timings: list[dict[str, Any]] = field(default_factory=list)
    resent: set[str] = field(default_factory=set)  # hashes re-broadcast by this run (once each)


def _after_broadcast(chain_tx: ChainTx) -> None:
    """Called right after a broadcast. Does nothing; tests replace it to simulate a crash at that point."""


# --- lease (contracts/lease.py: short, renewed between steps, fenced where signed work is persisted) --

RelayerBusy = lease.RelayerBusy
relayer_lease = lease.relayer_lease


# --- entry points ---------------------------------------------------------------------------------


def relay_once(*, max_items: int | None = None, receipt_timeout_s: float = RECEIPT_TIMEOUT_S) -> RelayReport:
    """Finish in-flight transactions, send up to `max_items` pending items, wait for their receipts."""
    started = time.perf_counter()
    report = RelayReport()
    owner = lease.new_owner()
    if not lease.acquire(owner):
        report.busy = True
        return report
    try:
        with lease.holding(owner):
            # Before anything: on another chain (a reset dev chain) every receipt is missing, and the
            # old transactions would be re-sent and new ones sent to addresses without code.
            chain_identity.require_deployed_chain()
            _confirm(report, receipt_timeout_s)
            if _index_caught_up(report):
                _send_pending(max_items or settings.RELAYER_BATCH_SIZE, report)
                _confirm(report, receipt_timeout_s)
    except chain_identity.WrongChain as exc:  # logged by the check itself, once per re-check
        report.wrong_chain = exc.detail
    except (client.ChainUnavailable, client.ContractNotDeployed) as exc:
        log.warning("relayer: %s; items stay queued", exc)
        report.unavailable = True
    except lease.LeaseLost as exc:
        # This run stalled past its lease and another relayer carries on; what it persisted is safe.
        log.warning("relayer: %s; this run stops", exc)
        report.busy = True
    finally:
        lease.release(owner)
    report.seconds = time.perf_counter() - started
    return report


def _index_caught_up(report: RelayReport) -> bool:
    """Send nothing while the index trails the chain (a database restored to an older copy): items that
    were pending at backup time may be done on chain already, and only the indexer can tell. Confirming
    our own in-flight transactions goes on meanwhile (it indexes their receipts)."""
    lag = indexer.stale_by()
    if lag is not None:
        report.index_behind = lag
        log.warning("relayer: the index is %s blocks behind the chain; sending waits for the indexer", lag)
        return False
    return True


# --- sending --------------------------------------------------------------------------------------


def _send_pending(max_items: int, report: RelayReport) -> None:
    items = list(
        OutboxItem.objects.filter(status=OutboxItem.Status.PENDING).order_by("created_at", "id")[:max_items]
    )
    report.items_claimed = len(items)
    by_kind: dict[str, list[OutboxItem]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    for kind_name, kind_items in by_kind.items():
        try:
            kind = get_kind(kind_name)
        except BadItem as exc:
            for item in kind_items:
                _fail(item, "bad_payload", str(exc), report)
            continue
        encoded: list[tuple[OutboxItem, Any]] = []
        for item in kind_items:
            try:
                encoded.append((item, kind.encode_item(item.payload)))
            except BadItem as exc:
                _fail(item, "bad_payload", str(exc), report)
        for start in range(0, len(encoded), kind.max_batch):
            _send_batch(kind, encoded[start : start + kind.max_batch], report)


def _fail(item: OutboxItem, code: str, detail: str, report: RelayReport) -> None:
    with transaction.atomic():
        OutboxItem.objects.filter(pk=item.pk).update(
            status=OutboxItem.Status.FAILED,
            error_code=code[:64],
            error_detail=detail,
            updated_at=timezone.now(),
        )
        outbox.items_failed([item.pk])  # the rows that follow the item fail with it
    report.failed += 1


def _send_batch(kind: RelayKind, batch: list[tuple[OutboxItem, Any]], report: RelayReport) -> None:
    """Estimate, split when too big or when a multi-item call reverts, then sign + persist + broadcast."""
    data = encode_call(kind.contract_name, kind.function_name, kind.call_args([enc for _, enc in batch]))
    target = client.deployment_address(kind.contract_name)
    call = {"from": client.relayer_account().address, "to": target, "data": data}
    try:
        gas = _gas_for(kind, call, len(batch))
    except client.ChainRpcError as exc:
        if not _is_revert(exc):
            # e.g. the relayer is out of funds: not the items' fault, they stay pending for the next run
            log.warning("relayer: cannot estimate %s (%s); items stay queued", kind.name, exc)
            return
        if len(batch) > 1:
            _split(kind, batch, report)
            return
        code, detail = decode_revert(exc.data if isinstance(exc.data, str) else None)
        _fail(batch[0][0], code, detail or str(exc), report)
        return
    if len(batch) > 1 and gas > _block_gas_limit() * BLOCK_GAS_SHARE:
        _split(kind, batch, report)
        return
    chain_tx = _sign_and_persist(kind, [item for item, _ in batch], call, gas)
    report.txs_sent += 1
    report.tx_timings.append(
        {
            "tx_hash": chain_tx.tx_hash,
            "kind": kind.name,
            "items": len(batch),
            "gas_estimate": gas,
            "sent_at": time.perf_counter(),
        }
    )
    _broadcast(chain_tx)
    _after_broadcast(chain_tx)


def _is_revert(exc: client.ChainRpcError) -> bool:
    has_data = isinstance(exc.data, str) and exc.data.startswith("0x")
    return has_data or "revert" in str(exc).lower()


def _gas_for(kind: RelayKind, call: dict[str, Any], items: int) -> int:
    """Gas for the batch: a known per-item bound after a dry run, or the node's estimate."""
    if kind.gas_per_item is None:
        return int(client.rpc("eth_estimateGas", [call]), 16)
    client.rpc("eth_call", [call, "pending"])  # raises ChainRpcError if the batch would revert
    return BATCH_BASE_GAS + kind.gas_per_item * items


def _split(kind: RelayKind, batch: list[tuple[OutboxItem, Any]], report: RelayReport) -> None:
    middle = len(batch) // 2
    _send_batch(kind, batch[:middle], report)
    _send_batch(kind, batch[middle:], report)


def _block_gas_limit() -> int:
    return int(client.rpc("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16)


def _fees() -> dict[str, int]:
    latest = client.rpc("eth_getBlockByNumber", ["latest", False])
    if latest.get("baseFeePerGas") is None:  # a pre-London (or gas-free consortium) chain
        return {"gasPrice": int(client.rpc("eth_gasPrice"), 16)}
    tip = int(client.rpc("eth_maxPriorityFeePerGas"), 16)
    return {"maxFeePerGas": 2 * int(latest["baseFeePerGas"], 16) + tip, "maxPriorityFeePerGas": tip}


def _sign_and_persist(kind: RelayKind, items: list[OutboxItem], call: dict[str, Any], gas: int) -> ChainTx:
    account = client.relayer_account()
    chain = client.chain_id()
    chain_nonce = int(client.rpc("eth_getTransactionCount", [account.address, "pending"]), 16)
    fees = _fees()
    with transaction.atomic():
        lease.fence()  # a run that lost its lease must not sign: LeaseLost rolls this back
        state = RelayerState.objects.select_for_update().get(pk=1)
        in_flight = ChainTx.objects.filter(
            chain_id=chain, sender=account.address, status=ChainTx.Status.SIGNED
        )
        # With nothing in flight the chain's count is the truth (it also recovers from a reset chain);
        # otherwise our own counter covers signed transactions the node has not seen yet.
        nonce = max(state.next_nonce, chain_nonce) if in_flight.exists() else chain_nonce
        tx = {
            "to": call["to"],
            "data": call["data"],
            "value": 0,
            "gas": int(gas * GAS_HEADROOM) + GAS_MARGIN,
            "nonce": nonce,
            "chainId": chain,
            **fees,
        }
        signed = account.sign_transaction(tx)
        chain_tx = ChainTx.objects.create(
            chain_id=chain,
            sender=account.address,
            nonce=nonce,
            kind=kind.name,
            tx_hash="0x" + bytes(signed.hash).hex(),
            raw_tx=bytes(signed.raw_transaction),
        )
        OutboxItem.objects.filter(pk__in=[item.pk for item in items]).update(
            status=OutboxItem.Status.SENT,
            chain_tx=chain_tx,
            attempts=F("attempts") + 1,
            error_code="",
            error_detail="",
            updated_at=timezone.now(),
        )
        state.next_nonce = nonce + 1
        state.save(update_fields=["next_nonce", "updated_at"])
    return chain_tx


def _broadcast(chain_tx: ChainTx) -> None:
    try:
        client.rpc("eth_sendRawTransaction", ["0x" + bytes(chain_tx.raw_tx).hex()])
    except client.ChainRpcError as exc:
        # "already known" / "nonce too low" (already mined) are the harmless repeats; anything else is
        # kept on the row and the tx stays signed, to be re-sent or found dropped on the next pass.
        if "already" not in str(exc).lower() and "nonce too low" not in str(exc).lower():
            log.warning("broadcast of %s refused: %s", chain_tx.tx_hash, exc)
            ChainTx.objects.filter(pk=chain_tx.pk).update(error_detail=str(exc))


# --- re-orgs --------------------------------------------------------------------------------------


def register() -> None:
    """Called from ContractsConfig.ready(): the indexer tells the relayer about re-orgs, and knows
    nothing of relayer rows itself. A rebuild (contracts/rebuild.py) is no re-org: the chain kept our
    transactions, so the outbox stays as it is."""
    indexer.register_rewind(rewind_from)
    rebuild.register_replay(rewind=rewind_from, reset=None)


def rewind_from(fork_block: int) -> None:
    """Our transactions mined in blocks >= fork_block (now orphaned) are in flight again: the next run
    re-checks their receipts and re-broadcasts the same signed bytes if the node lost them, so their
    items settle (and their events are indexed) once more on the new branch."""
    orphaned = ChainTx.objects.filter(
        chain_id=client.chain_id(),
        status__in=[ChainTx.Status.CONFIRMED, ChainTx.Status.FAILED],
        block_number__gte=fork_block,
    )
    OutboxItem.objects.filter(chain_tx__in=orphaned).update(
        status=OutboxItem.Status.SENT, confirmed_block=None, error_code="", error_detail=""
    )
    orphaned.update(status=ChainTx.Status.SIGNED, block_number=None, gas_used=None)


# --- confirming -----------------------------------------------------------------------------------


def _receipt(tx_hash: str) -> dict[str, Any] | None:
    return client.rpc("eth_getTransactionReceipt", [tx_hash])


def _confirm(report: RelayReport, timeout_s: float) -> None:
    in_flight = ChainTx.objects.filter(
        status=ChainTx.Status.SIGNED, chain_id=client.chain_id(), sender=client.relayer_account().address
    )
    waiting = {tx.tx_hash: tx for tx in in_flight.order_by("nonce")}
    first_pass = True
    deadline = time.monotonic() + timeout_s
    next_nonce_check = 0.0
    poll_s = RECEIPT_FIRST_POLL_S
    while waiting:
        lease.heartbeat()  # waiting for receipts can outlast the lease
        for tx_hash, chain_tx in list(waiting.items()):
            receipt = _receipt(tx_hash)
            if receipt is not None:
                _apply_receipt(chain_tx, receipt, report)
                del waiting[tx_hash]
            elif (
                first_pass
                and tx_hash not in report.resent
                and not any(t["tx_hash"] == tx_hash for t in report.tx_timings)
            ):
                _broadcast(chain_tx)  # from an earlier run (crash, node down): same bytes, same hash
                report.resent.add(tx_hash)
                report.rebroadcast += 1
        first_pass = False
        if waiting and time.monotonic() >= next_nonce_check:
            # A transaction of an earlier run whose nonce the chain has used for another one (a re-org,
            # then a newer transaction at that nonce) can never be mined: its items go back to the queue
            # now, not after the whole timeout (which held lost grants 30 s after a chain came back
            # rewound). This run's own transactions are skipped: the lease keeps other senders away.
            _drop_replaced(waiting, report.resent)
            next_nonce_check = time.monotonic() + NONCE_CHECK_S
        if not waiting or time.monotonic() > deadline:
            break
        # A dev chain mines at once, a real one every few seconds: start fast, back off to the cap.
        time.sleep(poll_s)
        poll_s = min(RECEIPT_POLL_S, poll_s * 2)
    # Set, not added to: relay_once confirms twice, and a transaction still waiting after both is one.
    report.waiting_txs = sum(1 for chain_tx in waiting.values() if not _drop_if_replaced(chain_tx))


def _drop_replaced(waiting: dict[str, ChainTx], candidates: set[str]) -> None:
    """Drops from `waiting` (and from flight) the `candidates` below the sender's mined nonce that have no
    receipt: one eth_getTransactionCount per sender, then `_drop_if_replaced` asks again for each."""
    mined: dict[str, int] = {}
    for tx_hash, chain_tx in list(waiting.items()):
        if tx_hash not in candidates:
            continue
        if chain_tx.sender not in mined:
            count = client.rpc("eth_getTransactionCount", [chain_tx.sender, "latest"])
            mined[chain_tx.sender] = int(count, 16)
        if chain_tx.nonce < mined[chain_tx.sender] and _drop_if_replaced(chain_tx):
            del waiting[tx_hash]


def _drop_if_replaced(chain_tx: ChainTx) -> bool:
    """A nonce the chain has used for another transaction: ours can never mine; requeue its items."""
    mined = int(client.rpc("eth_getTransactionCount", [chain_tx.sender, "latest"]), 16)
    if mined <= chain_tx.nonce or _receipt(chain_tx.tx_hash) is not None:
        return False
    with transaction.atomic():
        ChainTx.objects.filter(pk=chain_tx.pk).update(
            status=ChainTx.Status.DROPPED, updated_at=timezone.now()
        )
        chain_tx.items.filter(status=OutboxItem.Status.SENT).update(
            status=OutboxItem.Status.PENDING, chain_tx=None, updated_at=timezone.now()
        )
    log.warning(
        "tx %s dropped (nonce %s reused); its items are queued again", chain_tx.tx_hash, chain_tx.nonce
    )
    return True


def _apply_receipt(chain_tx: ChainTx, receipt: dict[str, Any], report: RelayReport) -> None:
    """Settle a mined transaction and its items, and index its logs, in one db transaction.

    Decoding the logs and working out each item's outcome are done first, outside the transaction:
    on SQLite the transaction holds the one write lock, which the API's requests wait for meanwhile.
    (Only the lease holder changes the items of a transaction still `signed`, so reading them before
    the transaction is safe.)
    """
    block = int(receipt["blockNumber"], 16)
    succeeded = int(receipt["status"], 16) == 1
    kind = get_kind(chain_tx.kind)
    failure = None if succeeded else _revert_reason(chain_tx, receipt)
    receipt_logs = indexer.decode_receipt(receipt)
    items = list(chain_tx.items.filter(status=OutboxItem.Status.SENT).order_by("created_at", "id"))
    if succeeded:
        target = client.deployment_address(kind.contract_name).lower()
        own_logs = [entry for entry in receipt_logs.logs if entry.address.lower() == target]
        if not own_logs and not _has_code(receipt.get("to") or target, receipt["blockNumber"]):
            # A call to an address without code "succeeds" and does nothing: never confirmed.
            outcomes = [NO_CONTRACT] * len(items)
        else:
            outcomes = kind.outcomes([item.payload for item in items], own_logs, block_number=block)
    else:
        assert failure is not None  # a failed receipt always has a reason (_revert_reason)
        outcomes = [failure] * len(items)
    with transaction.atomic():
        indexer.store_receipt(receipt_logs)
        _settle_items(items, outcomes, block, report)
        chain_tx.status = ChainTx.Status.CONFIRMED if succeeded else ChainTx.Status.FAILED
        chain_tx.block_number, chain_tx.gas_used = block, int(receipt["gasUsed"], 16)
        chain_tx.save(update_fields=["status", "block_number", "gas_used", "updated_at"])
    for timing in report.tx_timings:
        if timing["tx_hash"] == chain_tx.tx_hash:
            timing["mined_s"] = time.perf_counter() - timing.pop("sent_at")
            timing["gas_used"] = chain_tx.gas_used


def _settle_items(items: list[OutboxItem], outcomes: list[Outcome], block: int, report: RelayReport) -> None:
    """One UPDATE per distinct outcome (all confirmed items share one), not one per item."""
    by_outcome: dict[Outcome, list[int]] = {}
    for item, outcome in zip(items, outcomes, strict=True):
        by_outcome.setdefault(outcome, []).append(item.pk)
    now = timezone.now()
    failed: list[int] = []
    for outcome, ids in by_outcome.items():
        if not outcome.confirmed:
            failed += ids
        OutboxItem.objects.filter(pk__in=ids).update(
            status=OutboxItem.Status.CONFIRMED if outcome.confirmed else OutboxItem.Status.FAILED,
            error_code=outcome.error_code[:64],
            error_detail=outcome.error_detail,
            confirmed_block=block,
            updated_at=now,
        )
        if outcome.confirmed:
            report.confirmed += len(ids)
        else:
            report.failed += len(ids)
    outbox.items_failed(failed)  # inside the caller's transaction: the rows that follow them fail too


NO_CONTRACT = Outcome(
    False,
    "no_contract",
    "the target address has no contract code on this chain (not the chain the contracts were deployed on?)",
)


def _has_code(address: str, block: str) -> bool:
    return client.rpc("eth_getCode", [address, block]) not in ("0x", "0x0", None)


def _revert_reason(chain_tx: ChainTx, receipt: dict[str, Any]) -> Outcome:
    """The custom error a mined transaction reverted with: from the node's call trace when it has one
    (exact), else by replaying the call on the state after its block (the state that made it fail)."""
    try:
        trace = client.rpc("debug_traceTransaction", [chain_tx.tx_hash, {"tracer": "callTracer"}])
        if trace.get("output") not in (None, "0x"):
            return Outcome(False, *decode_revert(trace["output"]))
    except client.ChainRpcError:
        pass  # no debug namespace on this node
    tx = client.rpc("eth_getTransactionByHash", [chain_tx.tx_hash])
    call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
    try:
        client.rpc("eth_call", [call, receipt["blockNumber"]])
    except client.ChainRpcError as exc:
        return Outcome(False, *decode_revert(exc.data if isinstance(exc.data, str) else None))
    if int(receipt["gasUsed"], 16) >= int(tx["gas"], 16):
        return Outcome(False, "out_of_gas", "the transaction ran out of gas")
    return Outcome(False, "reverted", "the transaction reverted")
