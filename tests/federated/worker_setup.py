"""Shared set-up for the hospital-worker tests: the real API in a live server, the session anvil with a
TrainingRegistry of the test module's own, training jobs approved on chain through the outbox, the demo
charts with TRAINING consents (release_setup), and hospital workers connected to all of it as the
`hospital_worker` command connects them (same function, in this process)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from eth_account import Account
from pytest_django.live_server_helper import LiveServer
from web3.contract import Contract

from access.consent import services as consent_services
from access.identity.keys import unlock_managed_key
from access.models import Hospital
from contracts import client, outbox
from contracts.drain import drain_outbox
from contracts.messages import Domain, PlanApproval
from contracts.models import Deployment
from contracts.relayer_kinds import TrainingPlanApprovalItem
from federated import dispatch, rounds, services
from federated.metrics import validation_split
from federated.models import RoundUpdate, TrainingJob, TrainingRound
from federated.worker.round_task import RoundTask
from federated.worker.runtime import HospitalWorker, connect_worker
from tests.conftest import PASSWORD
from tests.federated.release_setup import WdbcWorld
from tests.fixtures.chain import DeployedContracts, deploy_contract, transact

SIGNATURE_TTL_S = 3600


@pytest.fixture(scope="module", name="training_registry")
def training_registry_fixture(deployed_contracts: DeployedContracts) -> Contract:
    relayer = deployed_contracts.accounts.relayer.address
    return deploy_contract(
        deployed_contracts.w3,
        "TrainingRegistry",
        deployed_contracts.directory.address,
        relayer,
        sender=relayer,
    )


@dataclass
class Federation:
    """The world of one test: charts and consents at General Hospital, the registry, the live API."""

    world: WdbcWorld
    registry: Contract
    api_url: str
    tmp_path: Path

    @property
    def personas(self) -> Any:
        return self.world.personas

    def job(self, *, hospitals: list[Hospital] | None = None, quorum: int = 1, **plan: Any) -> TrainingJob:
        """A job approved on chain by every participating hospital's admin (status ready)."""
        p = self.personas
        hospitals = hospitals or [p.general]
        settings_: dict[str, Any] = {
            "admin": p.hadmin if p.general in hospitals else p.other_hadmin,
            "name": "wdbc",
            "hospitals": hospitals,
            "model_spec": {"name": "logistic"},
            "strategy_spec": {"name": "fedavg"},
            "local_epochs": 2,
            "batch_size": 8,
            "lr": 0.1,
            "rounds": 2,
            "quorum": quorum,
            "round_timeout_s": 600,
        }
        job = services.create_job(**(settings_ | plan))
        admins = {p.general.pk: p.hadmin, p.clinic.pk: p.other_hadmin}
        for hospital in hospitals:
            services.approve_plan(job=job, admin=admins[hospital.pk], password=PASSWORD)
        drain_outbox()
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.READY
        return job

    def grant_clinic_training(self, name: str) -> None:
        """The patient also consents to TRAINING by City Clinic (for the whole chart)."""
        consent_services.grant_with_managed_key(
            patient=self.world.patients[name],
            password=PASSWORD,
            grantee=self.personas.clinic.account_address,
            scope="chart",
            purpose="TRAINING",
            expires_at=None,
        )
        drain_outbox()

    def start(self, job: TrainingJob) -> TrainingJob:
        """Start the job with a seed that splits General's two complete patients one to training, one to
        validation, and keeps p3 (City Clinic's patient, when it has one) in training: the split is per
        patient and seeded, and the patients' keys are new in every test."""
        p3 = self.world.address("p3")

        def fits(seed: int) -> bool:
            in_training = validation_split([p3], seed=seed)[0]
            return len(self.training_patients(seed=seed)) == 1 and len(in_training) == 1

        seed = next(s for s in range(1000) if fits(s))
        TrainingJob.objects.filter(pk=job.pk).update(seed=seed)
        return rounds.start_job(job=job)

    def training_patients(self, *, seed: int) -> set[str]:
        """Which of General's two complete patients (p0, p1) the worker trains on, for a job seed."""
        patients = sorted([self.world.address("p0"), self.world.address("p1")])
        train, _ = validation_split(patients, seed=seed)
        return {patients[i] for i in train.tolist()}

    def kwargs(self, job: TrainingJob, number: int, hospital: Hospital) -> dict[str, Any]:
        """What the coordinator sent the hospital's queue for round `number` (federated.dispatch)."""
        training_round = TrainingRound.objects.get(job=job, number=number)
        return dispatch.round_kwargs(
            job=TrainingJob.objects.get(pk=job.pk),
            training_round=training_round,
            hospital_id=hospital.hospital_id,
            deadline=dispatch.signature_deadline(training_round, ttl_s=SIGNATURE_TTL_S),
        )

    def task(self, job: TrainingJob, number: int, hospital: Hospital) -> RoundTask:
        return RoundTask.from_kwargs(self.kwargs(job, number, hospital))

    def worker(self, hospital: Hospital, **options: Any) -> HospitalWorker:
        """The hospital's worker, connected to the live API as `manage.py hospital_worker` connects it."""
        keys = self.personas.chain.accounts
        account = (
            keys.hospital_account if hospital.slug == "general-hospital" else keys.other_hospital_account
        )
        return connect_worker(
            slug=hospital.slug,
            account=Account.from_key(account.key),
            api_url=self.api_url,
            state_dir=self.tmp_path / f"worker-{hospital.slug}",
            store_dir=Path(settings.IPFS_LOCAL_DIR),
            **options,
        )

    def row(self, job: TrainingJob, number: int, hospital: Hospital) -> RoundUpdate:
        return RoundUpdate.objects.get(round__job=job, round__number=number, hospital=hospital)

    def approve_other_plan_on_chain(self, job: TrainingJob, hospital: Hospital) -> str:
        """The hospital's admin approves another plan hash for the job on chain (relayed and indexed)."""
        admin = self.personas.hadmin if hospital == self.personas.general else self.personas.other_hadmin
        signer = unlock_managed_key(user=admin, password=PASSWORD)
        other = "0x" + secrets.token_hex(32)
        approval = PlanApproval(
            hospital_id=bytes.fromhex(hospital.hospital_id[2:]),
            job_id=bytes.fromhex(job.job_id[2:]),
            plan_hash=bytes.fromhex(other[2:]),
            nonce=int(client.call("TrainingRegistry", "nonces", signer.address)),
            deadline=int(time.time()) + 3600,
        )
        domain = Domain(client.chain_id(), client.deployment_address("TrainingRegistry"))
        signature = signer.sign_typed_data(full_message=approval.typed_data(domain)).signature
        outbox.enqueue(TrainingPlanApprovalItem(approval, signer.address, signature))
        drain_outbox()
        return other


@pytest.fixture(name="registry")
def registry_fixture(world: WdbcWorld, training_registry: Contract) -> Contract:
    """The module's TrainingRegistry recorded for this test's database, its relayer an operator."""
    chain = world.personas.chain
    Deployment.objects.update_or_create(
        chain_id=chain.chain_id,
        name="TrainingRegistry",
        defaults={"address": training_registry.address, "tx_hash": "", "block_number": 0},
    )
    # This test's fresh relayer publishes model versions: it needs the registry's operator role.
    transact(
        training_registry.functions.grantRole(
            training_registry.functions.OPERATOR_ROLE().call(), client.relayer_account().address
        ),
        chain.accounts.relayer.address,
    )
    return training_registry


@pytest.fixture(name="federation")
def federation_fixture(
    world: WdbcWorld,
    registry: Contract,
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Federation:
    # The live server's request threads close their connections after each request: a PostgreSQL
    # connection kept for CONN_MAX_AGE by a finished thread would block dropping the test database.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    return Federation(world=world, registry=registry, api_url=live_server.url, tmp_path=tmp_path)
