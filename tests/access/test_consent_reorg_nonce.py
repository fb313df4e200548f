"""A chain node back from a crash a few blocks short, and a grant whose nonce the new branch used: the
relayer queues it again at once. Runs on its own anvil: it rewinds the chain."""

from __future__ import annotations

import time

import pytest
from web3.types import RPCEndpoint

from access.models import Consent
from contracts import client, indexer, relayer
from contracts.models import ChainTx
from tests.access.test_consent_api import check
from tests.access.test_consent_reorg import granted_after_a_snapshot
from tests.conftest import Personas
from tests.fixtures.chain import own_chain_fixture

pytestmark = pytest.mark.django_db


deployed_contracts = own_chain_fixture()  # evm_revert must not touch other tests' chain


def test_a_grant_whose_nonce_the_new_branch_used_is_sent_again_without_waiting_out_the_receipt(
    personas: Personas,
) -> None:
    """A chain node back from a crash a few blocks short: the relayer's next transaction takes the nonce of
    a grant the lost blocks held. Re-broadcast, that grant's transaction is refused ("nonce too low") and
    can never be mined; the relayer sees the nonce used with no receipt of ours and queues the grant again
    in the same run, instead of polling for its receipt until the timeout (30 s by default)."""
    p = personas
    w3 = p.chain.w3
    snapshot = granted_after_a_snapshot(p)
    lost = ChainTx.objects.get()

    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    relayer_account = client.relayer_account()
    other = relayer_account.sign_transaction(
        {
            "to": relayer_account.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "nonce": lost.nonce,
            "chainId": w3.eth.chain_id,
        }
    )
    w3.eth.send_raw_transaction(other.raw_transaction)
    w3.provider.make_request(RPCEndpoint("anvil_mine"), ["0x3"])
    assert indexer.sync_chain().reorg_fork is not None
    lost.refresh_from_db()
    assert lost.status == ChainTx.Status.SIGNED  # in flight again, its nonce taken

    started = time.monotonic()
    report = relayer.relay_once(receipt_timeout_s=120.0)
    took = time.monotonic() - started

    assert took < 60.0, f"the relayer waited {took:.1f} s for a receipt that can never come"
    lost.refresh_from_db()
    assert lost.status == ChainTx.Status.DROPPED
    resent = ChainTx.objects.exclude(pk=lost.pk).get()
    assert resent.status == ChainTx.Status.CONFIRMED and resent.nonce == lost.nonce + 1
    assert report.waiting_txs == 0
    consent = Consent.objects.get()
    assert consent.status == "active" and consent.grant_tx_hash == resent.tx_hash
    assert check(p, p.bob, p.alice, p.bob).json()["allowed"] is True
