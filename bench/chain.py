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
from typing import Any

from django.db import transaction
from django.test import override_settings
from eth_account import Account

from contracts import client, indexer, outbox, relayer
from contracts.deploy import deploy_contracts
from contracts.node import AnvilNode, anvil_private_keys, start_anvil
from contracts.typed_data import grant_typed_data, hospital_id

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
    tx = {
        "to": to,
        "data": calldata(),
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
    patient = Account.create().address
    last = ""
    for start in range(0, n_events, ANCHORS_PER_TX):
        items = [
            (secrets.token_bytes(32), patient, secrets.token_bytes(32))
            for _ in range(min(ANCHORS_PER_TX, n_events - start))
        ]
        last = _send_raw(
            lambda items=items: anchors.encode_abi("anchorRecords", args=[items]),
            anchors.address,
            40_000 * len(items) + 100_000,
            nonce,
        )
        nonce += 1
    while last and client.rpc("eth_getTransactionReceipt", [last]) is None:
        time.sleep(0.05)


def benchmark_indexer(n_events: int = 10_000) -> dict[str, Any]:
    """Mine `n_events` RecordAnchored events, then time one sync_chain over the mined blocks."""
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
            payload = grant_typed_data(
                chain_id=client.chain_id(),
                verifying_contract=registry.address,
                patient=patient.address,
                grantee=accounts[3].address,
                scope="chart",
                purpose=1,
                expires_at=0,
                version=0,
                deadline=int(time.time()) + 3600,
            )
            signature = patient.sign_typed_data(full_message=payload).signature.hex()
            outbox.enqueue(
                kind="consent.grant",
                idempotency_key=f"bench:{index}",
                payload={"message": payload["message"], "signature": "0x" + signature},
            )
        signing_s = time.perf_counter() - signing_started
        with override_settings(RELAYER_BATCH_SIZE=batch_size):
            reports = []
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
