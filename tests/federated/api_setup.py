"""Shared set-up for the training API tests: a finished job written straight into the models (rounds, updates,
their patients and model versions), over the WDBC world of release_setup.py (patients p0..p3 with demo charts
and TRAINING consents for General Hospital), with real weights in the content store and a TrainingRegistry
on the session chain.

The job: General Hospital and City Clinic; round 0 pools moments (version 0, no patients); round 1 averages
General's update over p0, p1, p2 and the Clinic's over p3 (version 1); round 2 averages
General's update over p0, p1 while the Clinic straggles (version 2).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pytest
import torch
from django.utils import timezone
from eth_account import Account
from sklearn.datasets import load_breast_cancer
from web3.contract import Contract

from access.consent import services as consent_services
from access.models import Hospital
from contracts import client, outbox
from contracts.drain import drain_outbox
from contracts.messages import Domain, Update, training_update_id
from contracts.models import Deployment
from contracts.relayer_kinds import TrainingUpdateItem
from ehr import store
from ehr.storage.unixfs import parse_cid
from federated import networks, services, weights_format
from federated.models import ModelVersion, RoundUpdate, TrainingJob, TrainingRound, UpdatePatient
from federated.patient_set import root_of
from tests.conftest import PASSWORD, Personas
from tests.federated.release_setup import WdbcWorld, _test_kek  # noqa: F401  (fixture)
from tests.fixtures.chain import DeployedContracts, deploy_contract, transact

ZERO32 = "0x" + "00" * 32


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
def _registry_deployed(_test_kek: None, personas: Personas, training_registry: Contract) -> None:  # noqa: F811
    """This test's database knows the registry, and this test's fresh relayer may publish versions (after
    the test's KEK is in place: the personas' keys are sealed with it)."""
    Deployment.objects.update_or_create(
        chain_id=personas.chain.chain_id,
        name="TrainingRegistry",
        defaults={"address": training_registry.address, "tx_hash": "", "block_number": 0},
    )
    role = training_registry.functions.OPERATOR_ROLE().call()
    transact(
        training_registry.functions.grantRole(role, client.relayer_account().address),
        personas.chain.accounts.relayer.address,
    )


@lru_cache(maxsize=1)
def trained_weights_bytes() -> bytes:
    """A logistic model fit on the whole WDBC table (malignant = 1), scaled by the table's own moments: good
    enough that its answers on the table's rows are right (the tests check p0 and p1)."""
    table = load_breast_cancer()
    X = torch.tensor(table.data, dtype=torch.float32)
    y = torch.tensor(table.target == 0, dtype=torch.float32)
    model = networks.build_model(spec={"name": "logistic"}, seed=7)
    model.standardize.set_moments(networks.FeatureMoments.of(X))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(X), y).backward()
        optimizer.step()
    return weights_format.dump(model.state_dict())


@dataclass
class TrainedJob:
    job: TrainingJob
    rounds: dict[int, TrainingRound]
    updates: dict[tuple[int, str], RoundUpdate]  # (round, hospital slug)
    versions: dict[int, ModelVersion]
    clinic_patients: list[str]
    weights: bytes
    chain_updates: dict[tuple[int, str], Update] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.job.job_id


def _update(
    training_round: TrainingRound,
    hospital: Hospital,
    *,
    patients: list[str],
    status: str = RoundUpdate.Status.ACCEPTED,
    cid: str = "",
    weights_hash: str = "",
) -> RoundUpdate:
    job = training_round.job
    update_id = training_update_id(
        bytes.fromhex(job.job_id[2:]), training_round.number, bytes.fromhex(hospital.hospital_id[2:])
    )
    accepted = status == RoundUpdate.Status.ACCEPTED
    update = RoundUpdate.objects.create(
        round=training_round,
        hospital=hospital,
        status=status,
        update_id="0x" + update_id.hex() if accepted else "",
        cid=cid if accepted else "",
        weights_hash=weights_hash if accepted else "",
        sample_count=len(patients) if accepted and patients else None,
        patient_root="0x" + root_of(patients).hex() if patients else "",
        pinned_block=training_round.pinned_block,
        metrics={"validation": {"accuracy": 0.9}} if accepted else {},
        timings={"train_s": 0.5} if accepted else {},
        received_at=timezone.now() if accepted else None,
        reason_code="" if accepted else "timeout",
    )
    UpdatePatient.objects.bulk_create([UpdatePatient(update=update, patient_address=p) for p in patients])
    return update


def _round(job: TrainingJob, number: int, pinned_block: int) -> TrainingRound:
    now = timezone.now()
    return TrainingRound.objects.create(
        job=job,
        number=number,
        kind=TrainingRound.Kind.MOMENTS if number == 0 else TrainingRound.Kind.TRAIN,
        pinned_block=pinned_block,
        status=TrainingRound.Status.DONE,
        started_at=now,
        deadline_at=now + dt.timedelta(seconds=60),
        finished_at=now,
        timings={"dispatch_s": 0.01, "local_training_s": 0.5, "aggregation_s": 0.02, "wall_s": 0.7},
        metrics={"test": {"f1": 0.9 + number / 100, "auroc": 0.95}, "validation": {}},
    )


def _version(
    job: TrainingJob, number: int, cid: str, weights_hash: str, updates: list[RoundUpdate]
) -> ModelVersion:
    version = ModelVersion.objects.create(
        job=job,
        round=number,
        cid=cid,
        weights_hash=weights_hash,
        metrics={"test": {"f1": 0.9 + number / 100}},
        metrics_hash="0x" + secrets.token_hex(32),
        updates_root=ZERO32,
    )
    version.updates.set(updates)
    return version


def make_job(personas: Personas, *, hospitals: list[Hospital] | None = None, **overrides: Any) -> TrainingJob:
    settings: dict[str, Any] = {
        "admin": personas.hadmin,
        "name": "wdbc",
        "hospitals": hospitals or [personas.general, personas.clinic],
        "model_spec": {"name": "logistic"},
        "strategy_spec": {"name": "fedavg"},
        "local_epochs": 1,
        "batch_size": 32,
        "lr": 0.1,
        "rounds": 2,
        "quorum": 1,
        "round_timeout_s": 60,
    }
    return services.create_job(**(settings | overrides))


def trained_job(world: WdbcWorld, *, job: TrainingJob | None = None, approved: bool = False) -> TrainedJob:
    """The finished two-round job described in the module docstring (rows written directly). `approved`:
    General's admin approves its plan on chain first (the chain takes General's updates only then)."""
    personas = world.personas
    general, clinic = personas.general, personas.clinic
    job = job or make_job(personas)
    if approved:
        services.approve_plan(job=job, admin=personas.hadmin, password=PASSWORD)
        drain_outbox()
    weights = trained_weights_bytes()
    cid, weights_hash = store.add(weights), weights_format.sha256_hex(weights)
    p0, p1, p2 = world.address("p0"), world.address("p1"), world.address("p2")
    # p3 gave General a TREATMENT consent only; for the Clinic, a TRAINING one (mined before the pin).
    consent_services.grant_with_managed_key(
        patient=world.patients["p3"],
        password=PASSWORD,
        grantee=clinic.account_address,
        scope="chart",
        purpose="TRAINING",
        expires_at=None,
    )
    drain_outbox()
    clinic_patients = [world.address("p3")]
    pinned = world.head()
    rounds = {n: _round(job, n, pinned) for n in (0, 1, 2)}
    updates = {
        (0, "general-hospital"): _update(rounds[0], general, patients=[], cid=cid, weights_hash=weights_hash),
        (0, "city-clinic"): _update(rounds[0], clinic, patients=[], cid=cid, weights_hash=weights_hash),
        (1, "general-hospital"): _update(
            rounds[1], general, patients=[p0, p1, p2], cid=cid, weights_hash=weights_hash
        ),
        (1, "city-clinic"): _update(
            rounds[1], clinic, patients=clinic_patients, cid=cid, weights_hash=weights_hash
        ),
        (2, "general-hospital"): _update(
            rounds[2], general, patients=[p0, p1], cid=cid, weights_hash=weights_hash
        ),
        (2, "city-clinic"): _update(rounds[2], clinic, patients=[], status=RoundUpdate.Status.STRAGGLER),
    }
    versions = {
        0: _version(
            job, 0, cid, weights_hash, [updates[(0, "general-hospital")], updates[(0, "city-clinic")]]
        ),
        1: _version(
            job, 1, cid, weights_hash, [updates[(1, "general-hospital")], updates[(1, "city-clinic")]]
        ),
        2: _version(job, 2, cid, weights_hash, [updates[(2, "general-hospital")]]),
    }
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.DONE, current_round=2)
    job.refresh_from_db()
    return TrainedJob(job, rounds, updates, versions, clinic_patients, weights)


def put_update_on_chain(world: WdbcWorld, trained: TrainedJob, key: tuple[int, str]) -> dict[str, Any]:
    """General's account signs the update of a `trained_job(..., approved=True)` and the relayer submits it;
    the update row gets the block and transaction of its UpdateSubmitted event, as the indexer's handler
    does. Returns the event's args (with `blockNumber`, `transactionHash`)."""
    personas = world.personas
    row = trained.updates[key]
    registry = client.contract("TrainingRegistry")
    message = Update(
        job_id=bytes.fromhex(trained.job.job_id[2:]),
        round=row.round.number,
        hospital_id=bytes.fromhex(row.hospital.hospital_id[2:]),
        plan_hash=bytes.fromhex(trained.job.plan_hash[2:]),
        weights_hash=bytes.fromhex(row.weights_hash[2:]),
        cid_digest=parse_cid(row.cid).digest,
        samples=row.sample_count or 0,
        patient_root=bytes.fromhex(row.patient_root[2:]),
        pinned_block=row.pinned_block or 0,
        deadline=int(client.get_web3().eth.get_block("latest")["timestamp"]) + 3600,
    )
    signature = Account.sign_typed_data(
        bytes(personas.chain.accounts.hospital_account.key),
        full_message=message.typed_data(Domain(client.chain_id(), registry.address)),
    ).signature
    start = client.latest_block()
    outbox.enqueue(TrainingUpdateItem(message, signature))
    drain_outbox()
    events = registry.events.UpdateSubmitted().get_logs(from_block=start)
    (event,) = [e for e in events if "0x" + e.args["jobId"].hex().removeprefix("0x") == trained.job.job_id]
    tx = "0x" + event.transactionHash.hex().removeprefix("0x")
    RoundUpdate.objects.filter(pk=row.pk).update(
        chain_status="confirmed", chain_block=event.blockNumber, chain_tx=tx
    )
    trained.chain_updates[key] = message
    return {**event.args, "blockNumber": event.blockNumber, "transactionHash": tx}
