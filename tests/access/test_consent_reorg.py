"""A re-org that drops the block of a grant: the consent stops counting at once, and the relayer gets the
same signed transaction mined again on the new branch. Runs on its own anvil: it rewinds the chain."""

from __future__ import annotations

import pytest
from eth_typing import HexStr
from web3.types import RPCEndpoint

from access.models import Consent
from contracts import indexer
from contracts.drain import drain_outbox
from contracts.models import ChainTx, OutboxItem
from tests.access.test_consent_api import check, grant_with_password
from tests.conftest import Personas
from tests.fixtures.chain import own_chain_fixture

pytestmark = pytest.mark.django_db


deployed_contracts = own_chain_fixture()  # evm_revert must not touch other tests' chain


def granted_after_a_snapshot(p: Personas) -> str:
    """Alice's grant to Bob, relayed and mined; the chain's snapshot from just before it (evm_revert)."""
    snapshot: str = p.chain.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    grant_with_password(p, p.alice, p.bob)
    drain_outbox()
    return snapshot


def test_grant_dropped_by_a_reorg_stops_counting_and_is_mined_again(personas: Personas) -> None:
    p = personas
    w3 = p.chain.w3
    snapshot = granted_after_a_snapshot(p)
    consent = Consent.objects.get()
    first_block = consent.granted_block
    assert first_block is not None
    assert check(p, p.bob, p.alice, p.bob).json()["allowed"] is True

    # The branch that carried the grant is replaced by a longer one without it.
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    w3.provider.make_request(RPCEndpoint("anvil_mine"), ["0x3"])
    report = indexer.sync_chain()
    assert report.reorg_fork is not None and report.reorg_fork <= first_block
    consent.refresh_from_db()
    assert consent.status == "pending"
    assert check(p, p.bob, p.alice, p.bob).json()["allowed"] is False
    assert OutboxItem.objects.get().status == "sent"

    drain_outbox()
    consent.refresh_from_db()
    assert consent.status == "active"
    assert check(p, p.bob, p.alice, p.bob).json()["allowed"] is True
    assert ChainTx.objects.count() == 1  # the same signed bytes, not a second transaction
    assert w3.eth.get_transaction_receipt(HexStr(ChainTx.objects.get().tx_hash))["status"] == 1
