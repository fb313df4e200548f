"""A re-org and the relayer's rows: the relayer registers its own rewind callback with the indexer, which
knows nothing of ChainTx or OutboxItem. The whole road on a real re-org is in
tests/access/test_consent_reorg.py; here the callback's effect on the rows is pinned down."""

from __future__ import annotations

import secrets

import pytest

from contracts import client, indexer, relayer
from contracts.models import ChainTx, OutboxItem
from tests.contracts.conftest import World

pytestmark = pytest.mark.django_db


def _settled_tx(*, block: int, status: str, chain_id: int | None = None) -> tuple[ChainTx, OutboxItem]:
    chain_tx = ChainTx.objects.create(
        chain_id=client.chain_id() if chain_id is None else chain_id,
        sender=client.relayer_account().address,
        nonce=block,
        kind="consent.grant",
        tx_hash="0x" + secrets.token_hex(32),
        raw_tx=b"\x02signed",
        status=status,
        block_number=block,
        gas_used=50_000,
    )
    confirmed = status == ChainTx.Status.CONFIRMED
    item = OutboxItem.objects.create(
        kind="consent.grant",
        payload={},
        idempotency_key=secrets.token_hex(8),
        status=OutboxItem.Status.CONFIRMED if confirmed else OutboxItem.Status.FAILED,
        chain_tx=chain_tx,
        confirmed_block=block,
        error_code="" if confirmed else "bad_signature",
    )
    return chain_tx, item


def test_the_relayer_registers_its_rewind_with_the_indexer(world: World) -> None:
    relayer.register()
    relayer.register()  # registering twice (e.g. ready() run again) calls it once
    assert indexer._rewinds.count(relayer.rewind_from) == 1


def test_a_reorg_puts_transactions_mined_on_orphaned_blocks_back_in_flight(world: World) -> None:
    relayer.register()
    kept_tx, kept_item = _settled_tx(block=9, status=ChainTx.Status.CONFIRMED)
    mined_tx, mined_item = _settled_tx(block=10, status=ChainTx.Status.CONFIRMED)
    reverted_tx, reverted_item = _settled_tx(block=11, status=ChainTx.Status.FAILED)
    other_chain_tx, _ = _settled_tx(block=12, status=ChainTx.Status.CONFIRMED, chain_id=424242)

    indexer.rewind(client.chain_id(), 10)

    for chain_tx in (mined_tx, reverted_tx):
        chain_tx.refresh_from_db()
        assert (chain_tx.status, chain_tx.block_number, chain_tx.gas_used) == ("signed", None, None)
    for item in (mined_item, reverted_item):
        item.refresh_from_db()
        assert (item.status, item.confirmed_block, item.error_code) == ("sent", None, "")
    kept_tx.refresh_from_db()
    kept_item.refresh_from_db()
    assert (kept_tx.status, kept_item.status, kept_item.confirmed_block) == ("confirmed", "confirmed", 9)
    other_chain_tx.refresh_from_db()
    assert other_chain_tx.status == "confirmed"  # another chain's re-org is not this one's
