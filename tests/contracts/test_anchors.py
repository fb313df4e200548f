"""Anchors on real anvil: write-once record digests, idempotent re-sends, audit roots, the writer role."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from web3.logs import DISCARD

from tests.contracts.consent_signing import reverts_with, selector
from tests.fixtures.chain import DeployedContracts, transact


@pytest.fixture
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


def anchor(chain: DeployedContracts, items: list[tuple]) -> dict:
    return transact(chain.anchors.functions.anchorRecords(items), chain.accounts.relayer.address)


def test_anchored_digest_is_readable_and_announced(chain):
    record, patient, digest = os.urandom(32), Account.create().address, os.urandom(32)
    receipt = anchor(chain, [(record, patient, digest)])
    assert chain.anchors.functions.digestOf(record).call() == digest
    (event,) = chain.anchors.events.RecordAnchored().process_receipt(receipt, errors=DISCARD)
    assert (event.args.recordId, event.args.patient, event.args.digest) == (record, patient, digest)


def test_resending_the_same_anchor_is_a_silent_no_op(chain):
    item = (os.urandom(32), Account.create().address, os.urandom(32))
    anchor(chain, [item])
    receipt = anchor(chain, [item])
    assert receipt["logs"] == []
    assert chain.anchors.functions.digestOf(item[0]).call() == item[2]


def test_other_digest_for_anchored_record_is_skipped_and_the_rest_applied(chain):
    record, other = os.urandom(32), os.urandom(32)
    first = os.urandom(32)
    anchor(chain, [(record, Account.create().address, first)])
    receipt = anchor(
        chain,
        [
            (record, Account.create().address, os.urandom(32)),
            (other, Account.create().address, b"\0" * 32),
            (other, Account.create().address, first),
        ],
    )
    skipped = [
        (e.args.recordId, e.args.reason)
        for e in chain.anchors.events.AnchorSkipped().process_receipt(receipt, errors=DISCARD)
    ]
    assert skipped == [(record, selector("DigestMismatch()")), (other, selector("ZeroDigest()"))]
    assert chain.anchors.functions.digestOf(record).call() == first
    assert chain.anchors.functions.digestOf(other).call() == first


def test_only_anchor_role_writes(chain):
    outsider = chain.w3.eth.accounts[9]
    with reverts_with("AccessControlUnauthorizedAccount(address,bytes32)"):
        transact(
            chain.anchors.functions.anchorRecords([(os.urandom(32), outsider, os.urandom(32))]), outsider
        )
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
