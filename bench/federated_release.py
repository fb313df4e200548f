"""The dataset-release benchmark: `dataset_records_per_s`, how many released records a hospital worker
turns into tensors per second (open the release, fetch, verify the digest, decrypt, parse the FHIR,
build the features), and the server's side of it (`release_records_per_s`: select through the consent
rule, unwrap each data key, seal the list, log one entry per patient).

Runs on a throwaway database, a throwaway anvil and a temporary block store (bench.consent's helpers).
Charts are the demo's (Breast Cancer Wisconsin rows as 30 Observations and a Condition per patient).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.test import override_settings
from django.utils import timezone
from eth_account import Account

from access.consent.scopes import scope_hash_hex
from access.identity.keys import create_hospital_key
from access.models import Consent, ConsentStatus, Hospital, Purpose, Role, User
from bench.consent import throwaway_chain, throwaway_database
from contracts import client
from contracts.models import IndexerCursor
from demo.charts import chart_bundle_for_row
from ehr import records
from ehr.storage import LocalBlockStore
from federated.dataset import load_dataset
from federated.release import release_dataset
from healthhash import sealing

Say = Callable[[str], None]
TARGETS = {"dataset_records_per_s": (">=", 10_000.0)}


def _patients(count: int) -> list[User]:
    rows = [
        User(
            username=f"bench-fp{i}",
            role=Role.PATIENT,
            eth_address=Account.create().address,
            key_kind="wallet",
            password="!",  # noqa: S106 - an unusable password hash: no login
        )
        for i in range(count)
    ]
    User.objects.bulk_create(rows, batch_size=1000)
    return list(User.objects.filter(username__startswith="bench-fp").order_by("pk"))


def _hospital(private_key: bytes) -> Hospital:
    (admin,) = User.objects.bulk_create(
        [User(username="bench-fadmin", role=Role.HOSPITAL_ADMIN, password="!")]  # noqa: S106
    )
    hospital = Hospital(slug="bench-federated", name="Bench", hospital_id="0x" + "22" * 32, admin=admin)
    create_hospital_key(hospital=hospital, private_key=private_key)
    Hospital.objects.filter(pk=hospital.pk).update(active=True, registered_block=1)
    hospital.refresh_from_db()
    return hospital


def _training_consents(patients: list[User], hospital: Hospital) -> None:
    """Active chart TRAINING consents as the indexer writes them (the relayed path is bench_consent's)."""
    Consent.objects.bulk_create(
        [
            Consent(
                consent_key="0x" + uuid.uuid4().hex * 2,
                patient=patient,
                patient_address=str(patient.eth_address),
                grantee_address=hospital.account_address,
                scope="chart",
                scope_hash=scope_hash_hex("chart"),
                purpose=Purpose.TRAINING,
                version=0,
                status=ConsentStatus.ACTIVE,
                granted_block=1,
                granted_at=timezone.now(),
            )
            for patient in patients
        ],
        batch_size=1000,
    )


def _charts(patients: list[User], hospital: Hospital) -> int:
    from sklearn.datasets import load_breast_cancer  # bundled with scikit-learn: nothing is downloaded

    table = load_breast_cancer()
    names = [str(n) for n in table.feature_names]
    written = 0
    for index, patient in enumerate(patients):
        row = index % len(table.target)
        label = "malignant" if int(table.target[row]) == 0 else "benign"
        bundle = chart_bundle_for_row(
            table.data[row], label, names, hospital, patient_address=str(patient.eth_address)
        )
        written += len(records.import_bundle(actor=patient, patient=patient, bundle=bundle).records)
    return written


def _pinned_block() -> int:
    """A block after the consents' (block 1), indexed: the fresh anvil may still be at block 0."""
    while client.latest_block() < 1:
        client.rpc("evm_mine", [])
    head = client.latest_block()
    IndexerCursor.objects.update_or_create(chain_id=client.chain_id(), defaults={"last_block": head})
    return head


def measure_dataset(
    *, hospital: Hospital, private_key: bytes, store_dir: Path, pinned_block: int, repeats: int = 3
) -> dict[str, Any]:
    """Server release and worker load of the same release, best of `repeats` (each a new job: nothing
    cached, every record fetched and decrypted)."""
    best_release = best_worker = float("inf")
    dataset = None
    for attempt in range(repeats):
        job_key = f"bench-{attempt}"
        started = time.perf_counter()
        release = release_dataset(hospital=hospital, job_key=job_key, pinned_block=pinned_block)
        best_release = min(best_release, time.perf_counter() - started)
        started = time.perf_counter()
        dataset = load_dataset(
            sealed_bytes=release.sealed_bytes,
            job_key=job_key,
            pinned_block=pinned_block,
            private_key=private_key,
            store=LocalBlockStore(store_dir, fsync=False),
        )
        best_worker = min(best_worker, time.perf_counter() - started)
    assert dataset is not None
    if dataset.skipped_records or dataset.incomplete_patients:
        raise RuntimeError(f"benchmark data is not clean: {len(dataset.skipped_records)} records skipped")
    return {
        "dataset_records_per_s": dataset.record_count / best_worker,
        "release_records_per_s": dataset.record_count / best_release,
        "dataset_records": dataset.record_count,
        "dataset_patients": len(dataset.patients),
        "release_bytes": len(release.sealed_bytes),
    }


def run_benchmark(*, quick: bool, say: Say = lambda _: None) -> dict[str, Any]:
    """The figures, on throwaway state; `quick` uses 100 patients (3,100 records), else 569 (17,639)."""
    n_patients = 100 if quick else 569
    private_key = Account.create().key
    with (
        tempfile.TemporaryDirectory(prefix="hh-bench-ipfs-") as blobs,
        throwaway_database(),
        throwaway_chain(),
        override_settings(
            IPFS_LOCAL_DIR=Path(blobs),
            IPFS_API_URL="",
            KEY_ENCRYPTION_KEYS=sealing.new_kek_entry("bench"),
            RECORDS_PER_DAY=0,
        ),
    ):
        hospital = _hospital(bytes(private_key))
        patients = _patients(n_patients)
        say(f"writing {n_patients} demo charts (31 records each)...")
        _charts(patients, hospital)
        _training_consents(patients, hospital)
        say("releasing and loading the dataset...")
        figures = measure_dataset(
            hospital=hospital,
            private_key=bytes(private_key),
            store_dir=Path(blobs),
            pinned_block=_pinned_block(),
        )
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in figures.items()}
