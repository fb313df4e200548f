"""A re-org that drops the block of a plan approval: the hospital is no longer approved, the job no longer
ready, until the relayer gets the same signed transaction mined again. Runs on its own anvil: it rewinds."""

from __future__ import annotations

import pytest
from web3.contract import Contract
from web3.types import RPCEndpoint

from contracts import indexer
from contracts.drain import drain_outbox
from contracts.models import Deployment
from federated import services
from federated.models import JobHospital, TrainingJob
from tests.conftest import PASSWORD, Personas
from tests.fixtures.chain import deploy_contract, own_chain_fixture

pytestmark = pytest.mark.django_db


deployed_contracts = own_chain_fixture()  # evm_revert must not touch other tests' chain


@pytest.fixture
def training_registry(personas: Personas) -> Contract:
    chain = personas.chain
    relayer = chain.accounts.relayer.address
    registry = deploy_contract(chain.w3, "TrainingRegistry", chain.directory.address, relayer, sender=relayer)
    Deployment.objects.update_or_create(
        chain_id=chain.chain_id,
        name="TrainingRegistry",
        defaults={"address": registry.address, "tx_hash": "", "block_number": 0},
    )
    return registry


def test_an_approval_dropped_by_a_reorg_stops_counting_and_is_mined_again(
    personas: Personas, training_registry: Contract
) -> None:
    p = personas
    job = services.create_job(
        admin=p.hadmin,
        name="reorg",
        hospitals=[p.general, p.clinic],
        model_spec={"name": "logistic"},
        strategy_spec={"name": "fedavg"},
        local_epochs=1,
        batch_size=16,
        lr=0.1,
        rounds=1,
        quorum=2,
        round_timeout_s=30,
    )
    services.approve_plan(job=job, admin=p.hadmin, password=PASSWORD)
    drain_outbox()
    w3 = p.chain.w3
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    services.approve_plan(job=job, admin=p.other_hadmin, password=PASSWORD)
    drain_outbox()
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY
    clinic_row = JobHospital.objects.get(job=job, hospital=p.clinic)
    assert clinic_row.approved_block is not None

    # The branch that carried the clinic's approval is replaced by a longer one without it.
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    w3.provider.make_request(RPCEndpoint("anvil_mine"), ["0x3"])
    report = indexer.sync_chain()
    assert report.reorg_fork is not None and report.reorg_fork <= clinic_row.approved_block
    job.refresh_from_db()
    clinic_row.refresh_from_db()
    assert job.status == TrainingJob.Status.APPROVING
    assert clinic_row.approval == JobHospital.Approval.QUEUED and clinic_row.approved_block is None
    assert JobHospital.objects.get(job=job, hospital=p.general).approval == JobHospital.Approval.APPROVED

    drain_outbox()
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.READY
