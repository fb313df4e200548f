"""A hospital worker turns a dataset release into tensors by itself: it opens the release with the
hospital's key, fetches and verifies each record, decrypts and parses it, with no database and no KEK.
Bad bytes are skipped and reported, never used; a job's later rounds read nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from contracts import client
from contracts.models import IndexerCursor
from ehr import store
from ehr.models import Record
from ehr.storage import StorageError
from federated.dataset import (
    DatasetCache,
    DeltaUnusable,
    LocalDataset,
    SkipReason,
    load_dataset,
    open_release_contents,
)
from federated.features import FEATURE_NAMES, WDBC_SYSTEM
from federated.release import release_dataset
from tests.ehr.conftest import corrupt_blob
from tests.federated.release_setup import ROWS, WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]


class CountingStore:
    """The real content store, counting reads (a spy, not a fake: every byte comes from the store)."""

    def __init__(self) -> None:
        self.inner = store.content_store()
        self.cats = 0

    def cat_many(self, cids: list[str]) -> list[bytes | StorageError]:
        self.cats += len(cids)
        return self.inner.cat_many(cids)


def released(world: WdbcWorld, pinned_block: int, job_key: str = "job-1") -> bytes:
    return release_dataset(hospital=world.hospital, job_key=job_key, pinned_block=pinned_block).sealed_bytes


def load(world: WdbcWorld, pinned_block: int, **kwargs: object) -> LocalDataset:
    return load_dataset(
        sealed_bytes=released(world, pinned_block),
        job_key="job-1",
        pinned_block=pinned_block,
        private_key=world.hospital_key,
        store=kwargs.get("store", store.content_store()),  # type: ignore[arg-type]
    )


def assert_rows_match_the_table(world: WdbcWorld, dataset: LocalDataset, names: list[str]) -> None:
    assert sorted(dataset.patients) == sorted(world.address(n) for n in names)
    name_of = {world.address(n): n for n in names}
    rows = [ROWS[name_of[patient]] for patient in dataset.patients]  # rows come in the release's order
    assert dataset.X.dtype.is_floating_point and tuple(dataset.X.shape) == (len(names), 30)
    np.testing.assert_allclose(dataset.X.numpy(), world.data[rows], rtol=1e-6, atol=1e-6)
    # 1 = malignant; scikit-learn's target says 0 for malignant.
    assert dataset.y.tolist() == [int(world.target[r] == 0) for r in rows]


def test_feature_vocabulary_is_the_demo_charts_and_scikit_learns() -> None:
    from sklearn.datasets import load_breast_cancer

    from demo import charts

    assert list(FEATURE_NAMES) == [str(n) for n in load_breast_cancer().feature_names]
    assert WDBC_SYSTEM == charts.WDBC_SYSTEM


def test_features_match_the_table_rows_of_the_consented_patients(
    world: WdbcWorld, django_assert_num_queries: object
) -> None:
    pinned = world.head()
    sealed = released(world, pinned)
    with django_assert_num_queries(0):  # type: ignore[operator]
        dataset = load_dataset(
            sealed_bytes=sealed,
            job_key="job-1",
            pinned_block=pinned,
            private_key=world.hospital_key,
            store=store.content_store(),
        )
    assert_rows_match_the_table(world, dataset, ["p0", "p1"])
    # p2 released its laboratory records only: no label, so no row, and the worker says so.
    assert dataset.incomplete_patients == (world.address("p2"),)
    assert dataset.skipped_records == ()
    assert dataset.record_count == dataset.records_read == 92


def test_tampered_bytes_in_the_store_are_skipped_and_reported(world: WdbcWorld) -> None:
    victim = Record.objects.filter(patient_address=world.address("p0"), resource_type="Observation").first()
    assert victim is not None
    corrupt_blob(victim.cid)
    dataset = load(world, world.head())
    assert [(s.record_id, s.reason) for s in dataset.skipped_records] == [
        (str(victim.id), SkipReason.TAMPERED)
    ]
    assert list(dataset.patients) == [world.address("p1")]
    assert world.address("p0") in dataset.incomplete_patients


def test_bytes_other_than_the_digest_names_are_never_used(world: WdbcWorld) -> None:
    """The database points two records at other blobs of the patient: one with its own digest kept (the
    bytes do not match it), one with the other blob's digest too (the bytes do not open under its key)."""
    first, second, third = Record.objects.filter(patient_address=world.address("p1")).order_by("id")[:3]
    Record.objects.filter(pk=first.pk).update(cid=third.cid)
    Record.objects.filter(pk=second.pk).update(cid=third.cid, digest=third.digest)
    dataset = load(world, world.head())
    assert {(s.record_id, s.reason) for s in dataset.skipped_records} == {
        (str(first.id), SkipReason.DIGEST_MISMATCH),
        (str(second.id), SkipReason.SEAL_BROKEN),
    }
    assert world.address("p1") not in dataset.patients


def test_a_later_round_drops_a_revoked_patient_without_reading_anything(world: WdbcWorld) -> None:
    cache, spy = DatasetCache(), CountingStore()
    first_block = world.head()
    first = cache.dataset_for(
        sealed_bytes=released(world, first_block),
        job_key="job-1",
        pinned_block=first_block,
        private_key=world.hospital_key,
        store=spy,  # type: ignore[arg-type]
    )
    assert spy.cats == 92 and len(first.patients) == 2
    world.revoke("p1")
    later_block = world.head()
    later = cache.dataset_for(
        sealed_bytes=released(world, later_block),
        job_key="job-1",
        pinned_block=later_block,
        private_key=world.hospital_key,
        store=spy,  # type: ignore[arg-type]
    )
    assert spy.cats == 92 and later.records_read == 0
    assert_rows_match_the_table(world, later, ["p0"])
    # A patient who consents later is read once, and only their records are.
    world.consents["p3"] = world.grant_training("p3")
    newest_block = world.head()
    newest = cache.dataset_for(
        sealed_bytes=released(world, newest_block),
        job_key="job-1",
        pinned_block=newest_block,
        private_key=world.hospital_key,
        store=spy,  # type: ignore[arg-type]
    )
    assert spy.cats == 92 + 31
    assert_rows_match_the_table(world, newest, ["p0", "p3"])


def test_a_delta_release_carries_only_what_changed_and_yields_the_full_releases_dataset(
    world: WdbcWorld,
) -> None:
    """Rounds after the first ask for a delta from the block of the release the worker holds: the revoked
    patient's records are named as gone (no key), a newly consenting patient's come with their keys, an
    unchanged round's release holds no record at all; each round's dataset is the one a full release at
    its block gives a worker with no cache."""
    cache, spy = DatasetCache(), CountingStore()
    first_block = world.head()
    cache.dataset_for(
        sealed_bytes=released(world, first_block),
        job_key="job-1",
        pinned_block=first_block,
        private_key=world.hospital_key,
        store=spy,  # type: ignore[arg-type]
    )
    assert cache.known_block("job-1") == first_block and cache.known_block("job-2") is None

    def delta(base: int, pinned: int) -> tuple[LocalDataset, list[str], tuple[str, ...]]:
        sealed = release_dataset(
            hospital=world.hospital, job_key="job-1", pinned_block=pinned, known_block=base
        ).sealed_bytes
        contents = open_release_contents(
            sealed, private_key=world.hospital_key, job_key="job-1", pinned_block=pinned
        )
        assert contents.base_block == base
        dataset = cache.dataset_for(
            sealed_bytes=sealed,
            job_key="job-1",
            pinned_block=pinned,
            private_key=world.hospital_key,
            store=spy,  # type: ignore[arg-type]
        )
        assert dataset.patients == load(world, pinned).patients  # what a worker with no cache gets
        assert dataset.record_count == load(world, pinned).record_count
        return dataset, [r.record_id for r in contents.records], contents.removed

    world.revoke("p1")
    revoked_block = world.head()
    dataset, sent, gone = delta(first_block, revoked_block)
    assert sent == [] and set(gone) == world.record_ids("p1") and dataset.records_read == 0
    assert_rows_match_the_table(world, dataset, ["p0"])

    unchanged_block = world.head() + 1
    world.personas.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    _index_to(unchanged_block)
    _, sent, gone = delta(revoked_block, unchanged_block)
    assert sent == [] and gone == ()

    world.consents["p3"] = world.grant_training("p3")
    granted_block = world.head()
    dataset, sent, gone = delta(unchanged_block, granted_block)
    assert set(sent) == world.record_ids("p3") and gone == () and dataset.records_read == 31
    assert_rows_match_the_table(world, dataset, ["p0", "p3"])
    assert spy.cats == 92 + 31  # every record read once in the job


def test_a_delta_from_a_release_the_worker_does_not_hold_is_refused_and_a_skipped_record_needs_a_full_one(
    world: WdbcWorld,
) -> None:
    block = world.head()
    sealed = release_dataset(
        hospital=world.hospital, job_key="job-1", pinned_block=block, known_block=block
    ).sealed_bytes
    with pytest.raises(DeltaUnusable, match="holds no release"):  # a restarted worker: empty cache
        DatasetCache().dataset_for(
            sealed_bytes=sealed,
            job_key="job-1",
            pinned_block=block,
            private_key=world.hospital_key,
            store=store.content_store(),
        )
    # A record whose blob could not be read is read again with its key: no delta from that release.
    record = Record.objects.filter(patient_address=world.address("p0")).first()
    assert record is not None
    corrupt_blob(record.cid)
    cache = DatasetCache()
    cache.dataset_for(
        sealed_bytes=released(world, block),
        job_key="job-1",
        pinned_block=block,
        private_key=world.hospital_key,
        store=store.content_store(),
    )
    assert cache.known_block("job-1") is None


def _index_to(block: int) -> None:
    IndexerCursor.objects.filter(chain_id=client.chain_id()).update(last_block=block)


def test_the_worker_runs_in_a_process_without_django_or_database_settings(
    world: WdbcWorld, tmp_path: Path
) -> None:
    pinned = world.head()
    (tmp_path / "release.bin").write_bytes(released(world, pinned))
    script = f"""
import json, sys
from pathlib import Path
from ehr.storage import LocalBlockStore
from federated.dataset import load_dataset
dataset = load_dataset(
    sealed_bytes=Path({str(tmp_path / "release.bin")!r}).read_bytes(), job_key="job-1", pinned_block={pinned},
    private_key=bytes.fromhex(sys.stdin.read().strip()),
    store=LocalBlockStore(Path({str(settings.IPFS_LOCAL_DIR)!r})),
)
# healthhash/__init__.py loads the Celery app, which imports django.conf; the worker must never
# configure Django's settings (no database, no KEK) nor load its database layer.
from django.conf import settings
touched = {{"settings": settings.configured, "db": "django.db" in sys.modules}}
print(json.dumps({{"patients": list(dataset.patients), "X": dataset.X.tolist(), "django": touched}}))
"""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO", "DATABASE", "HEALTHHASH_KEK", "KEY_ENCRYPTION"))
    }
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=world.hospital_key.hex(),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["django"] == {"settings": False, "db": False}
    name_of = {world.address(n): n for n in ("p0", "p1")}
    assert sorted(out["patients"]) == sorted(name_of)
    rows = [ROWS[name_of[patient]] for patient in out["patients"]]
    np.testing.assert_allclose(np.array(out["X"]), world.data[rows], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("wrong", ["job", "block", "key"])
def test_the_worker_refuses_a_release_for_another_job_block_or_key(world: WdbcWorld, wrong: str) -> None:
    from federated.release_format import ReleaseBroken

    pinned = world.head()
    sealed = released(world, pinned)
    key = (
        bytes(world.personas.chain.accounts.other_hospital_account.key)
        if wrong == "key"
        else world.hospital_key
    )
    with pytest.raises(ReleaseBroken):
        load_dataset(
            sealed_bytes=sealed,
            job_key="job-2" if wrong == "job" else "job-1",
            pinned_block=pinned - 1 if wrong == "block" else pinned,
            private_key=key,
            store=store.content_store(),
        )
