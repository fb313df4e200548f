"""Anchors on real anvil: write-once record and audit roots, idempotent re-sends, multicall, the writer."""

from __future__ import annotations

import os

import pytest
from web3.logs import DISCARD
from web3.types import TxReceipt

from tests.contracts.consent_signing import reverts_with
from tests.fixtures.chain import DeployedContracts, transact


@pytest.fixture
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


def anchor_root(chain: DeployedContracts, root: bytes, count: int, batch: bytes) -> TxReceipt:
    return transact(
        chain.anchors.functions.anchorRecordRoot(root, count, batch), chain.accounts.relayer.address
    )


def test_record_root_is_readable_and_announced(chain):
    root, batch = os.urandom(32), os.urandom(32)
    receipt = anchor_root(chain, root, 1000, batch)
    assert chain.anchors.functions.recordRootOf(batch).call() == root
    (event,) = chain.anchors.events.RecordRootAnchored().process_receipt(receipt, errors=DISCARD)
    assert (event.args.batchId, event.args.root, event.args.recordCount) == (batch, root, 1000)


def test_record_root_resend_is_a_silent_no_op_and_another_root_reverts(chain):
    root, batch = os.urandom(32), os.urandom(32)
    anchor_root(chain, root, 7, batch)
    assert anchor_root(chain, root, 7, batch)["logs"] == []
    with reverts_with("RecordRootMismatch()"):
        anchor_root(chain, os.urandom(32), 7, batch)
    with reverts_with("ZeroRoot()"):
        anchor_root(chain, b"\0" * 32, 7, os.urandom(32))
    assert chain.anchors.functions.recordRootOf(batch).call() == root


def test_several_roots_go_in_one_transaction_through_multicall(chain):
    anchors = chain.anchors
    roots = [(os.urandom(32), 100 + i, os.urandom(32)) for i in range(3)]
    calls = [anchors.encode_abi("anchorRecordRoot", args=list(root)) for root in roots]
    receipt = transact(anchors.functions.multicall(calls), chain.accounts.relayer.address)
    events = anchors.events.RecordRootAnchored().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.root, e.args.recordCount, e.args.batchId) for e in events] == roots
    outsider = chain.w3.eth.accounts[9]
    with reverts_with("AccessControlUnauthorizedAccount(address,bytes32)"):
        transact(anchors.functions.multicall(calls[:1]), outsider)


def test_only_anchor_role_writes(chain):
    outsider = chain.w3.eth.accounts[9]
    with reverts_with("AccessControlUnauthorizedAccount(address,bytes32)"):
        transact(chain.anchors.functions.anchorRecordRoot(os.urandom(32), 1, os.urandom(32)), outsider)
    with reverts_with("AccessControlUnauthorizedAccount(address,bytes32)"):
        transact(chain.anchors.functions.anchorAuditRoot(os.urandom(32), 1, os.urandom(32)), outsider)


def test_audit_root_is_idempotent_per_batch_and_conflicts_revert(chain):
    relayer = chain.accounts.relayer.address
    root, batch = os.urandom(32), os.urandom(32)
    receipt = transact(chain.anchors.functions.anchorAuditRoot(root, 7, batch), relayer)
    (event,) = chain.anchors.events.AuditRootAnchored().process_receipt(receipt, errors=DISCARD)
    assert (event.args.batchId, event.args.root, event.args.headCount) == (batch, root, 7)
    assert transact(chain.anchors.functions.anchorAuditRoot(root, 7, batch), relayer)["logs"] == []
    with reverts_with("AuditRootMismatch()"):
        transact(chain.anchors.functions.anchorAuditRoot(os.urandom(32), 7, batch), relayer)
    assert chain.anchors.functions.auditRootOf(batch).call() == root
