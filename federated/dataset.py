"""Dataset releases, the hospital worker side: open the release with the hospital's private key, fetch
each record's sealed bytes from the content store, verify their SHA-256, decrypt, parse the FHIR and build
the task's tensors (one row of 30 features and a label per patient).

This module runs where there are no database credentials and no KEK: it imports no Django and touches
no ORM. Raw records never leave it. A record whose bytes fail (missing, altered, digest or seal wrong) is
skipped and reported, never used.

Decrypt once per job: `DatasetCache` keeps, per job, what each record contributed; a later round's
release (its own pinned block) is served from it, reading only records not seen before, so a patient
revoked since is simply absent from that release and dropped without re-reading anything. The cache
also keeps the job's last release (ids, patients, digests), so a later round asks only for a delta from
its block (release_format): no key is sent twice, and an unchanged round's release is a few hundred bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from eth_account import Account

from ehr.storage.base import BlockCorrupted, ContentStore, StorageError
from federated.features import LABEL, N_FEATURES, contribution_of
from federated.release_format import ReleaseContents, ReleasedRecord, open_contents
from healthhash import sealing

FHIR_JSON = "application/fhir+json"
# Records fetched per store call: one index connection per batch, bounded memory for sealed bytes.
_FETCH_BATCH = 1024
# A record's part of a row: (patient, feature index or LABEL, value), or None when it carries nothing
# the task reads (another Observation, a note...).
Contribution = tuple[str, int, float] | None


class SkipReason:
    FETCH_FAILED = "fetch_failed"  # the store could not give the bytes (missing, node down)
    TAMPERED = "tampered"  # the store found bytes that do not hash to their CID
    DIGEST_MISMATCH = "digest_mismatch"  # the bytes are not the ones the record's digest names
    SEAL_BROKEN = "seal_broken"  # the bytes do not decrypt with the released key for this record
    NOT_FHIR = "not_fhir"  # decrypted, but not a FHIR JSON resource


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    record_id: str
    patient_address: str
    reason: str


@dataclass(frozen=True)
class LocalDataset:
    """The worker's training data for one round: X [n, 30] float32, y [n] int64 (1 = malignant),
    `patients[i]` is row i's patient. Patients released without a complete row (a feature or the label
    missing, or two records disagreeing) are in `incomplete_patients`, not in X."""

    X: torch.Tensor
    y: torch.Tensor
    patients: tuple[str, ...]
    pinned_block: int
    record_count: int
    skipped_records: tuple[SkippedRecord, ...] = ()
    incomplete_patients: tuple[str, ...] = ()
    records_read: int = 0  # fetched and decrypted for this release (0 when all came from the cache)


def hospital_account_of(private_key: bytes) -> str:
    """The checksummed account address of the hospital key (what the release is bound to)."""
    return Account.from_key(private_key).address


def open_release_contents(
    sealed_bytes: bytes, *, private_key: bytes, job_key: str, pinned_block: int
) -> ReleaseContents:
    """The opened release (full or delta); ReleaseBroken if it is not for this key, job and block."""
    return open_contents(
        sealed_bytes,
        private_key=private_key,
        job_key=job_key,
        hospital_account=hospital_account_of(private_key),
        pinned_block=pinned_block,
    )


def load_dataset(
    *, sealed_bytes: bytes, job_key: str, pinned_block: int, private_key: bytes, store: ContentStore
) -> LocalDataset:
    """Open, fetch, verify, decrypt and featurise one release, with no cache."""
    return DatasetCache().dataset_for(
        sealed_bytes=sealed_bytes,
        job_key=job_key,
        pinned_block=pinned_block,
        private_key=private_key,
        store=store,
    )


@dataclass(frozen=True, slots=True)
class _Member:
    """A record of the job's current release, as the cache keeps it: no key."""

    record_id: str
    patient_address: str
    digest: str


@dataclass
class _JobEntry:
    # record id -> (digest it was read with, what it contributed)
    contributions: dict[str, tuple[str, Contribution]] = field(default_factory=dict)
    # The last release assembled for the job (its block and records): the base of the next delta.
    block: int | None = None
    members: list[_Member] = field(default_factory=list)


class DeltaUnusable(Exception):
    """A delta release whose base this cache does not hold (evicted, restarted, or a record of the base
    never read): the caller asks for a full release."""


class DatasetCache:
    """Per job, what each released record contributed, so each record is read and decrypted once per
    job, and the job's last release, so that the next can be a delta from it. Holds the `max_jobs` most
    recently used jobs. Holds features, never keys or sealed bytes."""

    def __init__(self, *, max_jobs: int = 4) -> None:
        self._jobs: OrderedDict[str, _JobEntry] = OrderedDict()
        self._max_jobs = max_jobs

    def known_block(self, job_key: str) -> int | None:
        """The block of the job's release a delta can start from: one whose every record was read."""
        entry = self._jobs.get(job_key)
        if entry is None or entry.block is None:
            return None
        if any(member.record_id not in entry.contributions for member in entry.members):
            return None  # a record skipped last time (its blob missing) is read again, with its key
        return entry.block

    def dataset_for(
        self, *, sealed_bytes: bytes, job_key: str, pinned_block: int, private_key: bytes, store: ContentStore
    ) -> LocalDataset:
        """The round's dataset: exactly the records of this release (full, or a delta applied to the
        job's last one), read from the store only where the cache has not seen them."""
        contents = open_release_contents(
            sealed_bytes, private_key=private_key, job_key=job_key, pinned_block=pinned_block
        )
        entry = self._entry(job_key)
        members = [_Member(r.record_id, r.patient_address, r.digest) for r in contents.records]
        if contents.is_delta:
            if entry.block != contents.base_block or self.known_block(job_key) is None:
                raise DeltaUnusable(
                    f"the release is a delta from block {contents.base_block}; this worker holds "
                    f"{'no release' if entry.block is None else f'block {entry.block}'} of the job"
                )
            gone = set(contents.removed) | {m.record_id for m in members}
            members = sorted(
                [m for m in entry.members if m.record_id not in gone] + members,
                key=lambda m: (m.patient_address, m.record_id),
            )
        unseen = [r for r in contents.records if entry.contributions.get(r.record_id, ("",))[0] != r.digest]
        skipped = []
        for record, outcome in zip(unseen, read_records(unseen, store=store), strict=True):
            if isinstance(outcome, SkippedRecord):
                skipped.append(outcome)  # not cached: a repaired blob is read again next round
            else:
                entry.contributions[record.record_id] = (record.digest, outcome)
        entry.block, entry.members = pinned_block, members
        return _assemble(
            members,
            entry.contributions,
            pinned_block=pinned_block,
            skipped=tuple(skipped),
            records_read=len(unseen) - len(skipped),
        )

    def forget(self, job_key: str) -> None:
        self._jobs.pop(job_key, None)

    def _entry(self, job_key: str) -> _JobEntry:
        entry = self._jobs.pop(job_key, None) or _JobEntry()
        self._jobs[job_key] = entry
        while len(self._jobs) > self._max_jobs:
            self._jobs.popitem(last=False)
        return entry


def read_records(records: list[ReleasedRecord], *, store: ContentStore) -> list[Contribution | SkippedRecord]:
    """Fetch (in batches), verify, decrypt and parse released records; failures are returned, not raised."""
    outcomes: list[Contribution | SkippedRecord] = []
    for start in range(0, len(records), _FETCH_BATCH):
        batch = records[start : start + _FETCH_BATCH]
        fetched = store.cat_many([r.cid for r in batch])
        outcomes += [read_record(r, fetched=f) for r, f in zip(batch, fetched, strict=True)]
    return outcomes


def read_record(record: ReleasedRecord, *, fetched: bytes | StorageError) -> Contribution | SkippedRecord:
    """Verify, decrypt and parse one released record from what the store gave for its CID."""

    def skip(reason: str) -> SkippedRecord:
        return SkippedRecord(record.record_id, record.patient_address, reason)

    if isinstance(fetched, BlockCorrupted):
        return skip(SkipReason.TAMPERED)
    if isinstance(fetched, StorageError):
        return skip(SkipReason.FETCH_FAILED)
    sealed_bytes = fetched
    if record.content_type != FHIR_JSON:
        return skip(SkipReason.NOT_FHIR)
    if hashlib.sha256(sealed_bytes).hexdigest() != record.digest:
        return skip(SkipReason.DIGEST_MISMATCH)
    aad = sealing.record_content_aad(record.record_id, record.patient_address)
    try:
        plaintext = sealing.open_sealed(sealed_bytes, data_key=record.data_key, aad=aad)
    except sealing.SealBroken:
        return skip(SkipReason.SEAL_BROKEN)
    try:
        resource = json.loads(plaintext)
    except ValueError:
        return skip(SkipReason.NOT_FHIR)
    if not isinstance(resource, dict):
        return skip(SkipReason.NOT_FHIR)
    found = contribution_of(resource)
    return None if found is None else (record.patient_address, *found)


def _assemble(
    released: list[_Member],
    contributions: dict[str, tuple[str, Contribution]],
    *,
    pinned_block: int,
    skipped: tuple[SkippedRecord, ...],
    records_read: int,
) -> LocalDataset:
    """One row per patient of the release, in the release's order, from the records it names only."""
    rows: dict[str, np.ndarray] = {}
    broken: set[str] = set()
    for record in released:
        cached = contributions.get(record.record_id)
        if cached is None or cached[1] is None:
            continue
        patient, index, value = cached[1]
        row = rows.get(patient)
        if row is None:
            row = rows[patient] = np.full(N_FEATURES + 1, np.nan)
        column = N_FEATURES if index == LABEL else index
        if not np.isnan(row[column]) and row[column] != value:
            broken.add(patient)  # two records disagree: no row rather than a guessed one
        row[column] = value
    patients = [p for p, row in rows.items() if p not in broken and not np.isnan(row).any()]
    table = np.stack([rows[p] for p in patients]) if patients else np.empty((0, N_FEATURES + 1))
    released_patients = dict.fromkeys(r.patient_address for r in released)
    complete = set(patients)
    return LocalDataset(
        X=torch.from_numpy(table[:, :N_FEATURES].astype(np.float32)),
        y=torch.from_numpy(table[:, N_FEATURES].astype(np.int64)),
        patients=tuple(patients),
        pinned_block=pinned_block,
        record_count=len(released),
        skipped_records=skipped,
        incomplete_patients=tuple(p for p in released_patients if p not in complete),
        records_read=records_read,
    )
