"""Shared set-up for the round tests: a TrainingRegistry on the session chain, demo charts of patients who
granted TRAINING to General Hospital or City Clinic, a two-hospital job whose plan both admins approved on
chain, and a hospital worker's side done by hand: updates built, stored and signed with the hospital's
own key (unlocked through the KEK, as `export_hospital_key` does) exactly as federated/worker would.

Tasks the coordinator sends go to the suite's in-memory broker (tests/conftest.py); `Broker` reads them
back with kombu, so a test can see what each hospital queue and the server queue received.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from eth_account.signers.local import LocalAccount
from kombu import pools as kombu_pools
from sklearn.datasets import load_breast_cancer
from web3.contract import Contract

from access.consent import services as consent_services
from access.identity.keys import unlock_hospital_key
from access.models import Consent, Hospital, Role, User
from contracts.drain import drain_outbox
from contracts.messages import Update
from contracts.models import Deployment
from demo.charts import chart_bundle_for_row
from ehr import records, store
from ehr.storage.unixfs import parse_cid
from federated import aggregation, patient_set, rounds, services, weights_format
from federated.models import ModelVersion, TrainingJob, TrainingRound
from federated.networks import FeatureMoments
from federated.round_updates import training_domain
from healthhash.celery import app as celery_app
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas, _user_with_key
from tests.fixtures.chain import DeployedContracts, deploy_contract, transact

# Table rows (scikit-learn's): General's patients g0, g1; City Clinic's c0, c1; `outsider` consents to nobody.
ROWS = {"g0": 0, "g1": 19, "c0": 1, "c1": 20, "outsider": 2}
HOSPITAL_OF = {"g0": "general", "g1": "general", "c0": "clinic", "c1": "clinic"}
SERVER_QUEUE = "celery"


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
def _test_kek(settings: Any) -> None:
    """A KEK ring of this test's own (autouse: set before the personas' keys are sealed)."""
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-rounds-test")


@pytest.fixture
def registry(personas: Personas, training_registry: Contract) -> Contract:
    """The registry recorded for this test's database; this test's fresh relayer may publish versions."""
    from contracts import client

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
    return training_registry


class Broker:
    """The in-memory broker's queues, read with kombu (messages are taken off the queue)."""

    @staticmethod
    def drop_pools() -> None:
        """Forget Celery's cached connection and producer pools (they keep the broker URL they were
        made with): a later change of broker_url, here or in another test, then takes effect."""
        kombu_pools.reset()  # kombu's process-wide connection and producer pools
        celery_app._pool = None  # type: ignore[attr-defined]
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]

    @staticmethod
    @contextmanager
    def down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Inside: the app's broker is one that does not answer (nothing listens on port 1), so every
        publish fails as with a broker that is down."""
        dead = "redis://127.0.0.1:1/5"
        monkeypatch.setattr(celery_app.conf, "broker_url", dead)
        # Celery reads CELERY_BROKER_URL from the environment before its conf (CI's Redis run sets it).
        monkeypatch.setenv("CELERY_BROKER_URL", dead)
        Broker.drop_pools()
        try:
            yield
        finally:
            monkeypatch.undo()
            Broker.drop_pools()

    def purge(self, *names: str) -> None:
        for name in names:
            self.take(name)

    def take(self, name: str) -> list[dict[str, Any]]:
        """Every message now on queue `name`: {"task": name, "kwargs": {...}, "eta": ... }."""
        found = []
        with celery_app.connection_for_read() as connection:
            queue = connection.SimpleQueue(name)
            try:
                while True:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        break
                    _args, kwargs, _embed = message.decode()
                    found.append(
                        {"task": message.headers["task"], "kwargs": kwargs, "eta": message.headers.get("eta")}
                    )
                    message.ack()
            finally:
                queue.close()
        return found


@pytest.fixture(name="broker")
def broker_fixture() -> Iterator[Broker]:
    Broker.drop_pools()  # a pool an earlier test bound to another broker URL must not carry our tasks
    queues = Broker()
    queues.purge(SERVER_QUEUE, "hospital.general-hospital", "hospital.city-clinic")
    yield queues
    Broker.drop_pools()  # leave no pool bound to the in-memory broker behind


@dataclass
class RoundsWorld:
    personas: Personas
    registry: Contract
    patients: dict[str, User]
    capture: Any  # pytest-django's django_capture_on_commit_callbacks
    features: dict[str, np.ndarray] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)

    def committed(self) -> Any:
        """A block whose on-commit work (dispatch, enqueued tasks) runs at its end, as after a real commit
        (the test's own transaction never commits)."""
        return self.capture(execute=True)

    def hospital(self, which: str) -> Hospital:
        return self.personas.general if which == "general" else self.personas.clinic

    def admin(self, which: str) -> User:
        return self.personas.hadmin if which == "general" else self.personas.other_hadmin

    def key(self, which: str) -> LocalAccount:
        return unlock_hospital_key(hospital=self.hospital(which), user=self.admin(which), password=PASSWORD)

    def revoke_training(self, name: str) -> None:
        """The patient revokes their TRAINING consent, mined and indexed."""
        consent = self.consents[name]
        consent.refresh_from_db()
        consent_services.revoke_with_managed_key(
            patient=self.patients[name], consent=consent, password=PASSWORD
        )
        drain_outbox()

    def address(self, name: str) -> str:
        address = self.patients[name].eth_address
        assert address is not None
        return address

    def patients_of(self, which: str) -> list[str]:
        return sorted(self.address(name) for name, hospital in HOSPITAL_OF.items() if hospital == which)

    def moments_of(self, which: str) -> dict[str, Any]:
        rows = [self.features[name] for name, hospital in HOSPITAL_OF.items() if hospital == which]
        return FeatureMoments.of(torch.tensor(np.array(rows))).as_json()

    # ---------------------------------------------------------------- jobs

    def job(self, *, hospitals: tuple[str, ...] = ("general", "clinic"), **overrides: Any) -> TrainingJob:
        plan: dict[str, Any] = {
            "admin": self.personas.hadmin,
            "name": "wdbc rounds",
            "hospitals": [self.hospital(which) for which in hospitals],
            "model_spec": {"name": "logistic"},
            "strategy_spec": {"name": "fedavg"},
            "local_epochs": 1,
            "batch_size": 8,
            "lr": 0.1,
            "rounds": 2,
            "quorum": len(hospitals),
            "round_timeout_s": 600,
        }
        job = services.create_job(**(plan | overrides))
        for which in hospitals:
            services.approve_plan(job=job, admin=self.admin(which), password=PASSWORD)
        drain_outbox()
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.READY
        return job

    def send_moments(self, job: TrainingJob, which: str) -> Any:
        hospital = self.hospital(which)
        with self.committed():
            return rounds.receive_moments(
                job_id=job.job_id,
                round_number=0,
                hospital_id=hospital.hospital_id,
                signer=hospital.account_address,
                moments=self.moments_of(which),
            )

    def running_train_round(self, job: TrainingJob, broker: Broker) -> TrainingRound:
        """Start `job`, answer round 0 with both hospitals' moments, aggregate it: round 1 runs."""
        with self.committed():
            rounds.start_job(job=job)
        for which in ("general", "clinic"):
            running = TrainingRound.objects.filter(job=job, number=0, status=TrainingRound.Status.RUNNING)
            if running.exists() and job.participants.filter(hospital=self.hospital(which)).exists():
                self.send_moments(job, which)
        with self.committed():
            assert rounds.aggregate_round(job=job, number=0) is not None
        broker.purge(SERVER_QUEUE, "hospital.general-hospital", "hospital.city-clinic")
        return TrainingRound.objects.get(job=job, number=1)

    # ---------------------------------------------------------------- a worker's update, by hand

    def base_weights(self, job: TrainingJob, number: int) -> dict[str, torch.Tensor]:
        base = ModelVersion.objects.get(job=job, round=number - 1)
        return aggregation.load_weights(cid=base.cid, weights_hash=base.weights_hash)

    def update(
        self,
        job: TrainingJob,
        which: str,
        *,
        number: int = 1,
        weights: dict[str, torch.Tensor] | None = None,
        shift: float = 0.1,
        patients: list[str] | None = None,
        signer: LocalAccount | None = None,
        store_bytes: bool = True,
        **terms: Any,
    ) -> dict[str, Any]:
        """The body a worker POSTs to /api/training/worker/updates, as receive_update takes it. `terms`
        override members of the signed Update (e.g. pinned_block=...); the signature covers them."""
        training_round = TrainingRound.objects.get(job=job, number=number)
        if weights is None:
            weights = {name: tensor + shift for name, tensor in self.base_weights(job, number).items()}
        data = weights_format.dump(weights)
        cid = store.add(data) if store_bytes else _cid_without_storing(data)
        patients = self.patients_of(which) if patients is None else patients
        hospital = self.hospital(which)
        members: dict[str, Any] = {
            "job_id": bytes.fromhex(job.job_id[2:]),
            "round": number,
            "hospital_id": bytes.fromhex(hospital.hospital_id[2:]),
            "plan_hash": bytes.fromhex(job.plan_hash[2:]),
            "weights_hash": bytes.fromhex(weights_format.sha256_hex(data)[2:]),
            "cid_digest": parse_cid(cid).digest,
            "samples": len(patients),
            "patient_root": patient_set.root_of(patients) if patients else b"\0" * 32,
            "pinned_block": training_round.pinned_block,
            "deadline": int(training_round.deadline_at.timestamp()) + 3600,
        }
        update = Update(**(members | terms))
        account = signer or self.key(which)
        signature = account.sign_typed_data(full_message=update.typed_data(training_domain())).signature
        return {
            "message": update.message(),
            "signature": "0x" + bytes(signature).hex(),
            "cid": cid,
            "patients": patients,
            "metrics": {"validation": {"count": 1, "accuracy": 1.0, "f1": float("nan")}, "train_loss": 0.3},
            "epsilon": None,
            "timings": {"release_s": 0.01, "dataset_s": 0.02, "train_s": 0.5, "upload_s": 0.03},
        }


def _cid_without_storing(data: bytes) -> str:
    from django.conf import settings

    from ehr.storage.unixfs import compute_cid

    return compute_cid(data, cid_version=settings.IPFS_CID_VERSION)


@pytest.fixture(name="world")
def world_fixture(
    personas: Personas, registry: Contract, django_capture_on_commit_callbacks: Any
) -> RoundsWorld:
    table = load_breast_cancer()
    names = [str(n) for n in table.feature_names]
    patients: dict[str, User] = {}
    features: dict[str, np.ndarray] = {}
    for name, row in ROWS.items():
        patient = _user_with_key(name, Role.PATIENT)
        label = "malignant" if int(table.target[row]) == 0 else "benign"
        owner = personas.clinic if HOSPITAL_OF.get(name) == "clinic" else personas.general
        bundle = chart_bundle_for_row(
            table.data[row], label, names, owner, patient_address=str(patient.eth_address)
        )
        records.import_bundle(actor=patient, patient=patient, bundle=bundle)
        patients[name] = patient
        features[name] = np.asarray(table.data[row], dtype=np.float64)
    world = RoundsWorld(
        personas=personas,
        registry=registry,
        patients=patients,
        capture=django_capture_on_commit_callbacks,
        features=features,
    )
    for name, which in HOSPITAL_OF.items():
        world.consents[name] = consent_services.grant_with_managed_key(
            patient=patients[name],
            password=PASSWORD,
            grantee=world.hospital(which).account_address,
            scope="chart",
            purpose="TRAINING",
            expires_at=None,
        )
    drain_outbox()
    return world
