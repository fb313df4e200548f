"""Training jobs and their plan approvals on the real stack: anvil, the outbox relayer and the indexer.

The session chain (tests/fixtures/chain.py) has no TrainingRegistry yet: this module deploys one on the
session's Directory, as deploy_contracts does, and records it for the test's database.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from web3.contract import Contract

from access.identity.keys import unlock_managed_key
from contracts import client, outbox
from contracts.drain import drain_outbox
from contracts.messages import Domain, PlanApproval
from contracts.models import Deployment
from contracts.relayer_kinds import TrainingPlanApprovalItem
from federated import services
from federated.models import JobHospital, TrainingJob
from federated.plan import plan_hash
from healthhash.errors import DomainError, Forbidden, NotFound
from tests.conftest import PASSWORD, Personas
from tests.fixtures.chain import DeployedContracts, deploy_contract

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def training_registry(deployed_contracts: DeployedContracts) -> Contract:
    relayer = deployed_contracts.accounts.relayer.address
    return deploy_contract(
        deployed_contracts.w3,
        "TrainingRegistry",
        deployed_contracts.directory.address,
        relayer,
        sender=relayer,
    )


@pytest.fixture(autouse=True)
def _registry_deployed(personas: Personas, training_registry: Contract) -> None:
    Deployment.objects.update_or_create(
        chain_id=personas.chain.chain_id,
        name="TrainingRegistry",
        defaults={"address": training_registry.address, "tx_hash": "", "block_number": 0},
    )


def _job(personas: Personas, **overrides: Any) -> TrainingJob:
    settings: dict[str, Any] = {
        "admin": personas.hadmin,
        "name": "wdbc",
        "hospitals": [personas.general, personas.clinic],
        "model_spec": {"name": "mlp", "hidden": [16]},
        "strategy_spec": {"name": "fedavg"},
        "local_epochs": 2,
        "batch_size": 32,
        "lr": 0.05,
        "rounds": 5,
        "quorum": 2,
        "round_timeout_s": 60,
    }
    return services.create_job(**(settings | overrides))


def _approvals(job: TrainingJob) -> dict[str, str]:
    return {row.hospital.slug: row.approval for row in job.participants.select_related("hospital")}


def _approve_both(personas: Personas, job: TrainingJob) -> None:
    services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
    services.approve_plan(job=job, admin=personas.other_hadmin, password=PASSWORD)
    drain_outbox()


def test_job_is_ready_once_both_hospitals_approved_its_plan_on_chain(personas: Personas) -> None:
    job = _job(personas)
    assert job.status == TrainingJob.Status.DRAFT
    assert _approvals(job) == {"general-hospital": "pending", "city-clinic": "pending"}

    services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
    drain_outbox()
    job.refresh_from_db()
    assert _approvals(job) == {"general-hospital": "approved", "city-clinic": "pending"}
    assert job.status == TrainingJob.Status.APPROVING

    services.approve_plan(job=job, admin=personas.other_hadmin, password=PASSWORD)
    drain_outbox()
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY
    for row in job.participants.select_related("hospital"):
        assert row.approval == JobHospital.Approval.APPROVED
        assert row.approved_block is not None and row.approved_tx.startswith("0x")
        on_chain = client.call(
            "TrainingRegistry",
            "approvedPlanOf",
            bytes.fromhex(row.hospital.hospital_id[2:]),
            bytes.fromhex(job.job_id[2:]),
        )
        assert "0x" + bytes(on_chain).hex() == job.plan_hash


def test_an_admin_cannot_approve_twice_while_the_plan_is_unchanged(personas: Personas) -> None:
    job = _job(personas)
    services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
    with pytest.raises(services.ApprovalPending):
        services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
    drain_outbox()
    with pytest.raises(services.AlreadyApproved):
        services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_patients_and_doctors_cannot_create_or_approve_jobs(personas: Personas, who: str) -> None:
    user = getattr(personas, who)
    with pytest.raises(Forbidden) as created:
        _job(personas, admin=user)
    assert created.value.status_code == 403
    job = _job(personas)
    with pytest.raises(Forbidden) as approved:
        services.approve_plan(job=job, admin=user, password=PASSWORD)
    assert approved.value.status_code == 403


def test_a_hospital_admin_cannot_create_a_job_their_hospital_is_not_in(personas: Personas) -> None:
    with pytest.raises(Forbidden):
        _job(personas, admin=personas.other_hadmin, hospitals=[personas.general], quorum=1)
    assert _job(personas, admin=personas.cadmin).created_by == personas.cadmin


def test_an_admin_cannot_approve_for_a_hospital_outside_the_job(personas: Personas) -> None:
    job = _job(personas, hospitals=[personas.general], quorum=1)
    with pytest.raises(NotFound) as refused:
        services.approve_plan(job=job, admin=personas.other_hadmin, password=PASSWORD)
    assert refused.value.status_code == 404
    assert not JobHospital.objects.filter(job=job, hospital=personas.clinic).exists()
    with pytest.raises(Forbidden):
        services.approve_plan(job=job, admin=personas.cadmin, password=PASSWORD)


def test_a_changed_plan_has_a_new_hash_and_needs_every_approval_again(personas: Personas) -> None:
    job = _job(personas)
    _approve_both(personas, job)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY
    old_hash = job.plan_hash

    job = services.update_plan(job=job, admin=personas.other_hadmin, lr=0.01)
    assert job.plan_hash != old_hash and job.plan_hash == plan_hash(job)
    assert job.status == TrainingJob.Status.DRAFT
    assert _approvals(job) == {"general-hospital": "pending", "city-clinic": "pending"}

    _approve_both(personas, job)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY


def test_an_approval_signed_for_the_old_plan_does_not_make_the_job_ready(personas: Personas) -> None:
    job = _job(personas)
    services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
    services.approve_plan(job=job, admin=personas.other_hadmin, password=PASSWORD)
    job = services.update_plan(job=job, admin=personas.hadmin, model_spec={"name": "logistic"})

    drain_outbox()  # both approvals of the old hash get mined and indexed
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.DRAFT
    assert _approvals(job) == {"general-hospital": "pending", "city-clinic": "pending"}


def test_a_later_approval_of_an_old_plan_on_chain_withdraws_the_hospitals_approval(
    personas: Personas,
) -> None:
    """The chain keeps a hospital's latest approval only: an old plan's, mined last, replaces the new."""
    job = _job(personas)
    old_hash = job.plan_hash
    job = services.update_plan(job=job, admin=personas.hadmin, rounds=3)
    _approve_both(personas, job)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY

    signer = unlock_managed_key(user=personas.hadmin, password=PASSWORD)
    stale = PlanApproval(
        hospital_id=bytes.fromhex(personas.general.hospital_id[2:]),
        job_id=bytes.fromhex(job.job_id[2:]),
        plan_hash=bytes.fromhex(old_hash[2:]),
        nonce=int(client.call("TrainingRegistry", "nonces", signer.address)),
        deadline=int(time.time()) + 3600,
    )
    domain = Domain(client.chain_id(), client.deployment_address("TrainingRegistry"))
    signature = signer.sign_typed_data(full_message=stale.typed_data(domain)).signature
    outbox.enqueue(TrainingPlanApprovalItem(stale, signer.address, signature))
    drain_outbox()

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.APPROVING
    assert _approvals(job) == {"general-hospital": "pending", "city-clinic": "approved"}


def test_an_unchanged_plan_keeps_its_hash_and_approvals(personas: Personas) -> None:
    job = _job(personas)
    _approve_both(personas, job)
    job.refresh_from_db()
    same = services.update_plan(job=job, admin=personas.hadmin, model_spec={"hidden": [16], "name": "mlp"})
    assert same.plan_hash == job.plan_hash
    assert same.status == TrainingJob.Status.READY


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model_spec": {"name": "transformer"}}, "model.name"),
        ({"model_spec": {"name": "mlp", "hidden": [0]}}, "model.hidden.0"),
        ({"strategy_spec": {"name": "fedprox", "mu": -1}}, "strategy.mu"),
        ({"strategy_spec": {"name": "fedavg", "gamma": 1}}, "strategy.gamma"),
        ({"dp": {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 2}}, "dp.delta"),
        ({"lr": float("nan")}, "lr"),
        ({"quorum": 3}, "quorum"),
    ],
)
def test_a_bad_plan_member_is_a_400_naming_its_field(
    personas: Personas, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(DomainError) as refused:
        _job(personas, **overrides)
    assert refused.value.status_code == 400
    assert refused.value.field == field
    assert not TrainingJob.objects.exists()
