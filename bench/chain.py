"""Benchmarks of the chain I/O on a throwaway anvil: indexer events/s and relayer batch timings.

Each runs against its own fresh anvil inside ONE database transaction that is rolled back at the end,
so it leaves no rows behind (deployments, outbox, events) in whatever database it is pointed at.
The apps' indexer handlers are set aside while it runs: it measures the chain layer, not the apps.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.test import override_settings
from eth_account import Account
from eth_account.types import TransactionDictType
from eth_typing import HexStr

from contracts import client, indexer, outbox, relayer
from contracts.deploy import deploy_contracts
from contracts.events import encode_call
from contracts.messages import Domain, Grant
from contracts.node import AnvilNode, anvil_private_keys, start_anvil
from contracts.relayer_kinds import ConsentGrantItem, get_kind
from contracts.typed_data import hospital_id

ANCHORS_PER_TX = 400


@contextmanager
def _throwaway_chain() -> Iterator[tuple[AnvilNode, list[Any]]]:
    node = start_anvil()
    accounts = [Account.from_key(k) for k in anvil_private_keys(4)]
    saved_handlers, saved_rewinds = dict(indexer._handlers), list(indexer._rewinds)
    try:
        with override_settings(
            ETH_RPC_URL=node.rpc_url,
            CHAIN_CONFIRMATIONS=0,
            RELAYER_PRIVATE_KEY="0x" + accounts[0].key.hex().removeprefix("0x"),
        ):
            client.reset_caches()
            indexer._handlers.clear()
            indexer._rewinds.clear()
            with transaction.atomic():
                deploy_contracts(consortium_admin=accounts[1].address, say=lambda _: None)
                yield node, accounts
                transaction.set_rollback(True)
    finally:
        indexer._handlers.update(saved_handlers)
        indexer._rewinds.extend(saved_rewinds)
        client.reset_caches()
        node.stop()


def _send_raw(calldata: Callable[[], str], to: str, gas: int, nonce: int) -> str:
    account = client.relayer_account()
    tx: TransactionDictType = {
        "to": HexStr(to),
        "data": HexStr(calldata()),
        "value": 0,
        "gas": gas,
        "nonce": nonce,
        "chainId": client.chain_id(),
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    return client.rpc(
        "eth_sendRawTransaction", ["0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()]
    )


def _mine_anchor_events(n_events: int) -> None:
    anchors = client.contract("Anchors")
    nonce = int(client.rpc("eth_getTransactionCount", [client.relayer_account().address, "pending"]), 16)
    last = ""
    for start in range(0, n_events, ANCHORS_PER_TX):
        # Many record roots in one transaction through the contract's multicall: one event each.
        calls = [
            anchors.encode_abi(
                "anchorRecordRoot", args=[secrets.token_bytes(32), 100, secrets.token_bytes(32)]
            )
            for _ in range(min(ANCHORS_PER_TX, n_events - start))
        ]
        last = _send_raw(
            partial(anchors.encode_abi, "multicall", args=[calls]),
            anchors.address,
            40_000 * len(calls) + 100_000,
            nonce,
        )
        nonce += 1
    while last and client.rpc("eth_getTransactionReceipt", [last]) is None:
        time.sleep(0.05)


def benchmark_indexer(n_events: int = 10_000) -> dict[str, Any]:
    """Mine `n_events` RecordRootAnchored events, then time one sync_chain over the mined blocks."""
    with _throwaway_chain():
        started = time.perf_counter()
        _mine_anchor_events(n_events)
        mined_s = time.perf_counter() - started
        report = indexer.sync_chain()
        return {
            "events": report.new_events,
            "blocks": (report.to_block or 0) - (report.from_block or 0) + 1,
            "ranges": report.ranges,
            "sync_s": round(report.seconds, 3),
            "events_per_s": round(report.new_events / report.seconds) if report.seconds else None,
            "mining_s": round(mined_s, 3),
            "handlers": "none (chain layer only)",
        }


def benchmark_relayer(n_items: int = 200, *, batch_size: int = 100) -> dict[str, Any]:
    """Queue `n_items` signed consent grants (distinct patients) and time relay_once over them."""
    with _throwaway_chain() as (_, accounts):
        directory, registry = client.contract("Directory"), client.contract("ConsentRegistry")
        hid = hospital_id("bench-hospital")
        register = directory.functions.execute((0, hid, accounts[3].address, accounts[2].address, 0, 0))
        client.get_web3().eth.wait_for_transaction_receipt(register.transact({"from": accounts[1].address}))
        signing_started = time.perf_counter()
        for index in range(n_items):
            patient = Account.create()
            grant = Grant(
                patient=patient.address,
                grantee=accounts[3].address,
                scope="chart",
                purpose=1,
                expires_at=0,
                version=0,
                deadline=int(time.time()) + 3600,
            )
            payload = grant.typed_data(Domain(client.chain_id(), registry.address))
            signature = patient.sign_typed_data(full_message=payload).signature
            outbox.enqueue(ConsentGrantItem(grant, signature), idempotency_key=f"bench:{index}")
        signing_s = time.perf_counter() - signing_started
        with override_settings(RELAYER_BATCH_SIZE=batch_size):
            reports: list[relayer.RelayReport] = []
            while len(reports) < n_items:
                report = relayer.relay_once(max_items=batch_size)
                if not report.items_claimed:
                    break
                reports.append(report)
        txs = [t for r in reports for t in r.tx_timings]
        confirmed = sum(r.confirmed for r in reports)
        relay_s = sum(r.seconds for r in reports)
        return {
            "items": n_items,
            "confirmed": confirmed,
            "txs": len(txs),
            "batch_size": batch_size,
            "sign_and_enqueue_s": round(signing_s, 3),
            "relay_s": round(relay_s, 3),
            "items_per_s": round(confirmed / relay_s) if relay_s else None,
            "gas_per_item": round(sum(t.get("gas_used", 0) - 21_000 for t in txs) / max(confirmed, 1)),
            "per_batch_s": [round(r.seconds, 3) for r in reports],
        }


def measure_chain_limit(
    payloads: list[dict[str, Any]], *, kind_name: str = "consent.grant"
) -> dict[str, Any]:
    """What the node alone sustains: `payloads` (outbox payloads) encoded as the relayer encodes them, in
    the batches it would form from a full outbox, sent by a bare loop (sign, send, wait for the receipt)
    with the relayer key: no database, no lease, no dry run, no indexing."""
    kind = get_kind(kind_name)
    batch = min(kind.max_batch, settings.RELAYER_BATCH_SIZE)
    account = client.relayer_account()
    target = client.deployment_address(kind.contract_name)
    nonce = int(client.rpc("eth_getTransactionCount", [account.address, "pending"]), 16)
    started = time.perf_counter()
    for offset in range(0, len(payloads), batch):
        encoded = [kind.encode_item(p) for p in payloads[offset : offset + batch]]
        data = encode_call(kind.contract_name, kind.function_name, kind.call_args(encoded))
        gas = relayer.BATCH_BASE_GAS + (kind.gas_per_item or 100_000) * len(encoded)
        tx: TransactionDictType = {
            "to": HexStr(target),
            "data": HexStr(data),
            "value": 0,
            "gas": int(gas * relayer.GAS_HEADROOM),
            "nonce": nonce,
        }
        signed = account.sign_transaction(tx | {"chainId": client.chain_id(), **relayer._fees()})
        tx_hash = client.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        nonce += 1
        receipt = client.rpc("eth_getTransactionReceipt", [tx_hash])
        while receipt is None:
            time.sleep(0.001)
            receipt = client.rpc("eth_getTransactionReceipt", [tx_hash])
        if int(receipt["status"], 16) != 1:
            raise RuntimeError(f"batch at {offset} reverted")
    seconds = time.perf_counter() - started
    return {
        "items": len(payloads),
        "batch": batch,
        "seconds": seconds,
        "items_per_s": len(payloads) / seconds,
    }
