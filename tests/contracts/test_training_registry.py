"""TrainingRegistry on real anvil: plan approval by the hospital's admin, signed updates by the hospital's
account (active hospital, approved plan, write-once per job/round/hospital), operator-published model
versions, the batch's skip reasons as the relayer reads them, and the road through the outbox and relayer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from django.db import transaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from contracts import client, indexer, outbox, relayer
from contracts.events import decode_log
from contracts.messages import Domain, ModelVersion, PlanApproval, Update, training_update_id
from contracts.models import ChainEvent, OutboxItem
from contracts.relayer_kinds import (
    KINDS,
    TrainingModelVersionItem,
    TrainingPlanApprovalItem,
    TrainingUpdateItem,
)
from contracts.typed_data import OP_DEACTIVATE_HOSPITAL, OP_REGISTER_HOSPITAL, hospital_id
from tests.contracts.conftest import World
from tests.contracts.consent_signing import ZERO_ADDRESS, chain_now, reverts_with
from tests.ethers_wallet import ethers_sign
from tests.fixtures.chain import DeployedContracts, deploy_contract, transact


class Training:
    """A TrainingRegistry on the session chain's Directory, and helpers that sign as its actors do."""

    def __init__(self, chain: DeployedContracts) -> None:
        self.chain = chain
        self.w3: Web3 = chain.w3
        self.relayer = chain.accounts.relayer.address
        self.registry: Contract = deploy_contract(
            self.w3, "TrainingRegistry", chain.directory.address, self.relayer, sender=self.relayer
        )
        self.domain = Domain(chain.chain_id, self.registry.address)

    def approval(
        self, admin: LocalAccount, *, hospital: bytes, job: bytes, plan: bytes, **overrides: Any
    ) -> tuple[PlanApproval, bytes]:
        fields: dict[str, Any] = {
            "hospital_id": hospital,
            "job_id": job,
            "plan_hash": plan,
            "nonce": self.registry.functions.nonces(admin.address).call(),
            "deadline": chain_now(self.w3) + 3600,
        } | overrides
        approval = PlanApproval(**fields)
        signature = Account.sign_typed_data(
            admin.key, full_message=approval.typed_data(self.domain)
        ).signature
        return approval, bytes(signature)

    def approve(
        self, admin: LocalAccount, *, hospital: bytes, job: bytes, plan: bytes, signer: str | None = None
    ) -> Any:
        signer = signer or admin.address
        nonce = self.registry.functions.nonces(signer).call()
        approval, signature = self.approval(admin, hospital=hospital, job=job, plan=plan, nonce=nonce)
        args = approval.calldata(signer=signer, signature=signature)
        return transact(self.registry.functions.approvePlanBySig(*args), self.relayer)

    def update(self, *, job: bytes, plan: bytes, hospital: bytes | None = None, **overrides: Any) -> Update:
        fields: dict[str, Any] = {
            "job_id": job,
            "round": 1,
            "hospital_id": hospital or self.chain.hospital_id,
            "plan_hash": plan,
            "weights_hash": os.urandom(32),
            "cid_digest": os.urandom(32),
            "samples": 120,
            "patient_root": os.urandom(32),
            "pinned_block": self.w3.eth.block_number,
            "deadline": chain_now(self.w3) + 3600,
        } | overrides
        return Update(**fields)

    def sign(self, update: Update, key: LocalAccount | None = None) -> tuple:
        key = key or self.chain.accounts.hospital_account
        signature = Account.sign_typed_data(key.key, full_message=update.typed_data(self.domain)).signature
        return update.calldata(signature)

    def submit(self, update: Update, key: LocalAccount | None = None) -> Any:
        return transact(self.registry.functions.submitUpdateBySig(*self.sign(update, key)), self.relayer)

    def approved_job(
        self, hospital: bytes | None = None, admin: LocalAccount | None = None
    ) -> tuple[bytes, bytes]:
        """A fresh job whose plan the (default) hospital has approved: (job id, plan hash)."""
        job, plan = os.urandom(32), os.urandom(32)
        self.approve(
            admin or self.chain.accounts.hospital_admin,
            hospital=hospital or self.chain.hospital_id,
            job=job,
            plan=plan,
        )
        return job, plan


@pytest.fixture(scope="module")
def training(deployed_contracts: DeployedContracts) -> Training:
    return Training(deployed_contracts)


def fresh_hospital(chain: DeployedContracts) -> tuple[bytes, LocalAccount, LocalAccount]:
    """A newly registered hospital (id, account key, admin key): a test may deactivate it alone."""
    hid, account, admin = hospital_id("training-" + os.urandom(6).hex()), Account.create(), Account.create()
    action = (OP_REGISTER_HOSPITAL, hid, account.address, admin.address, 0, 0)
    transact(chain.directory.functions.execute(action), chain.accounts.consortium_admin.address)
    return hid, account, admin


# ---------------------------------------------------------------- plan approval


def test_the_hospital_admin_approves_a_plan_by_a_relayed_signature(training: Training) -> None:
    admin, hid = training.chain.accounts.hospital_admin, training.chain.hospital_id
    job, plan = os.urandom(32), os.urandom(32)
    nonce = training.registry.functions.nonces(admin.address).call()

    receipt = training.approve(admin, hospital=hid, job=job, plan=plan)

    assert training.registry.functions.approvedPlanOf(hid, job).call() == plan
    assert training.registry.functions.nonces(admin.address).call() == nonce + 1
    (event,) = training.registry.events.PlanApproved().process_receipt(receipt, errors=DISCARD)
    assert (event.args.hospitalId, event.args.jobId, event.args.planHash, event.args.admin) == (
        hid,
        job,
        plan,
        admin.address,
    )


def test_another_hospitals_admin_or_a_doctor_cannot_approve(training: Training) -> None:
    accounts, hid, job = training.chain.accounts, training.chain.hospital_id, os.urandom(32)
    for outsider in (accounts.other_hospital_admin, accounts.doctors[0], accounts.hospital_account):
        with reverts_with("NotHospitalAdmin()"):
            training.approve(outsider, hospital=hid, job=job, plan=os.urandom(32))
    # A doctor's signature passed off as the admin's is no signature of the admin.
    with reverts_with("BadSignature()"):
        training.approve(
            accounts.doctors[0],
            hospital=hid,
            job=job,
            plan=os.urandom(32),
            signer=accounts.hospital_admin.address,
        )
    assert training.registry.functions.approvedPlanOf(hid, job).call() == b"\0" * 32


def test_an_approval_is_single_use_and_expires(training: Training) -> None:
    admin, hid, job = training.chain.accounts.hospital_admin, training.chain.hospital_id, os.urandom(32)
    approval, signature = training.approval(admin, hospital=hid, job=job, plan=os.urandom(32))
    call = training.registry.functions.approvePlanBySig(
        *approval.calldata(signer=admin.address, signature=signature)
    )
    transact(call, training.relayer)
    with reverts_with("BadNonce()"):
        transact(call, training.relayer)
    expired, signature = training.approval(
        admin, hospital=hid, job=job, plan=os.urandom(32), deadline=chain_now(training.w3) - 1
    )
    with reverts_with("DeadlineExpired()"):
        transact(
            training.registry.functions.approvePlanBySig(
                *expired.calldata(signer=admin.address, signature=signature)
            ),
            training.relayer,
        )


def test_an_inactive_hospital_can_neither_approve_nor_submit(training: Training) -> None:
    chain = training.chain
    hid, account, admin = fresh_hospital(chain)
    job, plan = training.approved_job(hospital=hid, admin=admin)
    transact(
        chain.directory.functions.execute((OP_DEACTIVATE_HOSPITAL, hid, ZERO_ADDRESS, ZERO_ADDRESS, 0, 0)),
        chain.accounts.consortium_admin.address,
    )
    with reverts_with("HospitalNotActive()"):
        training.approve(admin, hospital=hid, job=os.urandom(32), plan=os.urandom(32))
    with reverts_with("HospitalNotActive()"):
        training.submit(training.update(job=job, plan=plan, hospital=hid), account)


# ---------------------------------------------------------------- updates


def test_an_update_signed_by_the_hospital_account_under_an_approved_plan_is_stored_and_announced(
    training: Training,
) -> None:
    job, plan = training.approved_job()
    update = training.update(job=job, plan=plan, round=3)

    receipt = training.submit(update)

    registry = training.registry
    update_id = registry.functions.updateIdOf(job, 3, training.chain.hospital_id).call()
    assert update_id == update.update_id == training_update_id(job, 3, training.chain.hospital_id)
    assert registry.functions.storedUpdateHash(update_id).call() == update.update_hash
    assert registry.functions.updateHashOf(update.as_tuple()).call() == update.update_hash
    (event,) = registry.events.UpdateSubmitted().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {
        "jobId": job,
        "hospitalId": training.chain.hospital_id,
        "round": 3,
        "planHash": plan,
        "weightsHash": update.weights_hash,
        "cidDigest": update.cid_digest,
        "samples": 120,
        "patientRoot": update.patient_root,
        "pinnedBlock": update.pinned_block,
    }


@pytest.mark.parametrize("signer", ["hospital_admin", "doctor", "other_hospital_account"])
def test_an_update_signed_by_anyone_but_the_hospital_account_is_refused(
    training: Training, signer: str
) -> None:
    accounts = training.chain.accounts
    key = {
        "hospital_admin": accounts.hospital_admin,
        "doctor": accounts.doctors[0],
        "other_hospital_account": accounts.other_hospital_account,
    }[signer]
    job, plan = training.approved_job()
    update = training.update(job=job, plan=plan)
    with reverts_with("BadSignature()"):
        training.submit(update, key)
    assert training.registry.functions.storedUpdateHash(update.update_id).call() == b"\0" * 32


def test_an_update_under_a_plan_its_hospital_did_not_approve_is_refused(training: Training) -> None:
    unapproved_job = os.urandom(32)
    with reverts_with("PlanNotApproved()"):
        training.submit(training.update(job=unapproved_job, plan=os.urandom(32)))
    # Another hospital's approval of the job does not count for this one.
    accounts = training.chain.accounts
    job, plan = training.approved_job(
        hospital=training.chain.other_hospital_id, admin=accounts.other_hospital_admin
    )
    with reverts_with("PlanNotApproved()"):
        training.submit(training.update(job=job, plan=plan))


def test_a_changed_plan_needs_approval_again(training: Training) -> None:
    admin, hid = training.chain.accounts.hospital_admin, training.chain.hospital_id
    job, old_plan = training.approved_job()
    new_plan = os.urandom(32)
    with reverts_with("PlanNotApproved()"):
        training.submit(training.update(job=job, plan=new_plan, round=1))

    training.approve(admin, hospital=hid, job=job, plan=new_plan)

    with reverts_with("PlanNotApproved()"):
        training.submit(training.update(job=job, plan=old_plan, round=2))
    training.submit(training.update(job=job, plan=new_plan, round=2))


def test_an_expired_or_empty_update_is_refused(training: Training) -> None:
    job, plan = training.approved_job()
    with reverts_with("DeadlineExpired()"):
        training.submit(training.update(job=job, plan=plan, deadline=chain_now(training.w3) - 1))
    with reverts_with("EmptyUpdate()"):
        training.submit(training.update(job=job, plan=plan, samples=0))


def test_a_resent_update_is_a_silent_no_op_even_past_its_deadline(
    training: Training, chain_clock: Any
) -> None:
    job, plan = training.approved_job()
    update = training.update(job=job, plan=plan, deadline=chain_now(training.w3) + 60)
    signed = training.sign(update)
    transact(training.registry.functions.submitUpdateBySig(*signed), training.relayer)

    assert transact(training.registry.functions.submitUpdateBySig(*signed), training.relayer)["logs"] == []
    # A relayer retrying after the deadline must not see a stored update fail; a re-signed copy with another
    # deadline is the same update too (the deadline is no part of what is stored).
    chain_clock.advance(120)
    assert transact(training.registry.functions.submitUpdateBySig(*signed), training.relayer)["logs"] == []
    resigned = replace(update, deadline=chain_now(training.w3) + 3600)
    assert training.submit(resigned)["logs"] == []
    assert training.registry.functions.storedUpdateHash(update.update_id).call() == update.update_hash


def test_a_different_update_for_the_same_job_round_and_hospital_is_refused(training: Training) -> None:
    job, plan = training.approved_job()
    first = training.update(job=job, plan=plan, round=4)
    training.submit(first)
    with reverts_with("UpdateConflict()"):
        training.submit(replace(first, weights_hash=os.urandom(32)))
    assert training.registry.functions.storedUpdateHash(first.update_id).call() == first.update_hash
    # The next round of the same hospital is another key.
    training.submit(replace(first, round=5, weights_hash=os.urandom(32)))


def test_a_batch_stores_the_good_updates_and_names_why_each_bad_one_was_skipped(training: Training) -> None:
    chain = training.chain
    job, plan = training.approved_job()
    training.approve(
        chain.accounts.other_hospital_admin, hospital=chain.other_hospital_id, job=job, plan=plan
    )
    stored = training.update(job=job, plan=plan, round=1)
    training.submit(stored)
    items = [
        (training.update(job=job, plan=plan, round=2), None),  # stored now
        (
            training.update(job=job, plan=plan, round=2, hospital=chain.other_hospital_id),
            chain.accounts.other_hospital_account,
        ),
        (stored, None),  # identical re-send: nothing happens, nothing is reported
        (replace(stored, samples=999), None),  # UpdateConflict
        (training.update(job=job, plan=os.urandom(32), round=3), None),  # PlanNotApproved
        (training.update(job=job, plan=plan, round=3), chain.accounts.doctors[0]),  # BadSignature
    ]
    receipt = transact(
        training.registry.functions.submitUpdateBatch([training.sign(u, key) for u, key in items]),
        training.relayer,
    )

    events = [decode_log(raw, "TrainingRegistry") for raw in _raw_logs(training.w3, receipt)]
    assert [e.event for e in events if e is not None] == [
        "UpdateSubmitted",
        "UpdateSubmitted",
        "UpdateSkipped",
        "UpdateSkipped",
        "UpdateSkipped",
    ]
    payloads: list[Mapping[str, Any]] = [
        {"message": u.message(), "signature": "0x" + "00" * 65} for u, _ in items
    ]
    outcomes = KINDS["training.update"].outcomes(payloads, [e for e in events if e], block_number=0)
    assert [(o.confirmed, o.error_code) for o in outcomes] == [
        (True, ""),
        (True, ""),
        (True, ""),
        (False, "UpdateConflict"),
        (False, "PlanNotApproved"),
        (False, "BadSignature"),
    ]


def _raw_logs(w3: Web3, receipt: Any) -> list[dict[str, Any]]:
    """The receipt's logs as JSON-RPC hex strings, the shape the indexer and the relayer decode."""
    response = w3.provider.make_request(
        RPCEndpoint("eth_getTransactionReceipt"), ["0x" + receipt["transactionHash"].hex().removeprefix("0x")]
    )
    return response["result"]["logs"]


def test_an_update_signed_by_ethers_is_accepted(training: Training) -> None:
    """ethers v6 signs the Update typed data as a browser or a node worker would: an independent encoder."""
    job, plan = training.approved_job()
    update = training.update(job=job, plan=plan, samples=2**40, pinned_block=2**60)  # above 2**53: strings
    payload = update.typed_data(training.domain)
    assert isinstance(payload["message"]["pinnedBlock"], str)
    key = training.chain.accounts.hospital_account

    signature = ethers_sign(bytes(key.key), payload)

    assert signature == Account.sign_typed_data(key.key, full_message=payload).signature
    transact(training.registry.functions.submitUpdateBySig(*update.calldata(signature)), training.relayer)
    assert training.registry.functions.storedUpdateHash(update.update_id).call() == update.update_hash


# ---------------------------------------------------------------- model versions


def model_version(job: bytes, round_number: int = 1) -> ModelVersion:
    return ModelVersion(
        job_id=job,
        round=round_number,
        weights_hash=os.urandom(32),
        cid_digest=os.urandom(32),
        metrics_hash=os.urandom(32),
        updates_root=os.urandom(32),
    )


def test_a_model_version_is_published_once_per_job_and_round(training: Training) -> None:
    registry, version = training.registry, model_version(os.urandom(32), 7)
    receipt = transact(registry.functions.publishModelVersion(version.as_tuple()), training.relayer)

    assert (
        registry.functions.storedModelVersionHash(version.model_version_id).call()
        == version.model_version_hash
    )
    assert registry.functions.modelVersionIdOf(version.job_id, 7).call() == version.model_version_id
    (event,) = registry.events.ModelVersionPublished().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {
        "jobId": version.job_id,
        "round": 7,
        "weightsHash": version.weights_hash,
        "cidDigest": version.cid_digest,
        "metricsHash": version.metrics_hash,
        "updatesRoot": version.updates_root,
    }
    assert (
        transact(registry.functions.publishModelVersion(version.as_tuple()), training.relayer)["logs"] == []
    )
    with reverts_with("ModelVersionConflict()"):
        transact(
            registry.functions.publishModelVersion(replace(version, metrics_hash=os.urandom(32)).as_tuple()),
            training.relayer,
        )
    with reverts_with("EmptyModelVersion()"):
        transact(
            registry.functions.publishModelVersion(
                replace(version, round=8, weights_hash=b"\0" * 32).as_tuple()
            ),
            training.relayer,
        )


def test_only_the_operator_publishes_model_versions(training: Training) -> None:
    accounts = training.chain.accounts
    for outsider in (
        accounts.hospital_admin.address,
        accounts.hospital_account.address,
        list(training.w3.eth.accounts)[9],
    ):
        with reverts_with("AccessControlUnauthorizedAccount(address,bytes32)"):
            transact(
                training.registry.functions.publishModelVersion(model_version(os.urandom(32)).as_tuple()),
                outsider,
            )
    role = training.registry.functions.OPERATOR_ROLE().call()
    assert training.registry.functions.hasRole(role, training.relayer).call()


# ---------------------------------------------------------------- through the outbox


@pytest.mark.django_db(transaction=True)
def test_approval_update_and_model_version_reach_the_chain_through_the_outbox(world: World) -> None:
    """deploy_contracts deploys the registry on the Directory with the relayer as operator; the three kinds
    relay, the indexer stores the events, and a re-queued update with a new signature confirms as a no-op."""
    registry = client.contract("TrainingRegistry")
    assert registry.functions.directory().call() == world.directory.address
    domain = Domain(world.w3.eth.chain_id, registry.address)
    hid, account, admin = hospital_id("outbox-" + os.urandom(6).hex()), Account.create(), Account.create()
    action = (OP_REGISTER_HOSPITAL, hid, account.address, admin.address, 0, 0)
    transact(world.directory.functions.execute(action), world.consortium_admin.address)
    job, plan, now = os.urandom(32), os.urandom(32), chain_now(world.w3)

    approval = PlanApproval(hospital_id=hid, job_id=job, plan_hash=plan, nonce=0, deadline=now + 3600)
    approval_sig = admin.sign_typed_data(full_message=approval.typed_data(domain)).signature
    update = Update(
        job_id=job,
        round=1,
        hospital_id=hid,
        plan_hash=plan,
        weights_hash=os.urandom(32),
        cid_digest=os.urandom(32),
        samples=64,
        patient_root=os.urandom(32),
        pinned_block=world.w3.eth.block_number,
        deadline=now + 3600,
    )
    update_sig = account.sign_typed_data(full_message=update.typed_data(domain)).signature
    with transaction.atomic():
        outbox.enqueue(TrainingPlanApprovalItem(approval, admin.address, approval_sig))
    relayer.relay_once()
    with transaction.atomic():
        outbox.enqueue(TrainingUpdateItem(update, update_sig))
        version = model_version(job)
        outbox.enqueue(TrainingModelVersionItem(version))
    relayer.relay_once()
    resigned = replace(update, deadline=now + 7200)
    with transaction.atomic():
        outbox.enqueue(
            TrainingUpdateItem(
                resigned, account.sign_typed_data(full_message=resigned.typed_data(domain)).signature
            )
        )
    relayer.relay_once()

    assert set(OutboxItem.objects.values_list("kind", "status")) == {
        ("training.plan_approval", "confirmed"),
        ("training.update", "confirmed"),
        ("training.model_version", "confirmed"),
    }
    assert OutboxItem.objects.count() == 4
    assert registry.functions.storedUpdateHash(update.update_id).call() == update.update_hash
    assert (
        registry.functions.storedModelVersionHash(version.model_version_id).call()
        == version.model_version_hash
    )
    # The indexer stores the registry's events (handlers for them come with the federated app).
    indexer.sync_chain()
    assert set(ChainEvent.objects.filter(contract="TrainingRegistry").values_list("event", flat=True)) == {
        "RoleGranted",  # the constructor's: the relayer is admin and operator
        "PlanApproved",
        "UpdateSubmitted",
        "ModelVersionPublished",
    }
