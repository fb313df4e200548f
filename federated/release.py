"""Dataset releases, the server side: which records a hospital may train on at a pinned block, their
data keys sealed once to the hospital's public key, and one access-log entry per included patient.

Selection is THE consent rule's queryset form (access.consent.rule.covering_consents + covered_records)
with grantee the hospital's account and purpose TRAINING, asked as of the pinned block. The KEK stays
here: data keys are unwrapped in this process and leave it only inside the sealed release. The wire
format is federated.release_format's.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter

from django.db import transaction
from django.db.models import Count, QuerySet
from eth_utils import to_checksum_address

from access.audit.log import AccessEvent, record_accesses
from access.consent import rule as consent_rule
from access.identity.keys import hospital_public_key
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    Hospital,
    Purpose,
)
from contracts import client
from contracts.models import IndexerCursor
from ehr import keys
from ehr.models import FHIR_JSON, Record
from federated.release_format import ReleasedRecord, SealedRelease, seal_records
from healthhash.errors import Conflict, DomainError

logger = logging.getLogger(__name__)

_LOOKUP_CHUNK = 500
_ORDER = ("patient_address", "id")  # a release lists its records by patient, then id
_FIELDS = ("id", "patient_address", "cid", "digest", "content_type", "wrapped_key")  # what _released takes


class HospitalInactive(Conflict):
    code = "hospital_inactive"


class BlockNotIndexed(Conflict):
    """The pinned block is ahead of the indexer: the consent rows would not yet show that block."""

    code = "block_not_indexed"


def release_dataset(
    *, hospital: Hospital, job_key: str, pinned_block: int, known_block: int | None = None
) -> SealedRelease:
    """Seal to `hospital` the records it may train on as of `pinned_block`, for job `job_key`.

    Only FHIR JSON records are released (the training tasks read FHIR; files stay home). Each included
    patient gets one access-log entry per (job, hospital): a later release for the same pair logs only
    the patients not logged before (e.g. consents granted since the last pinned block).

    `known_block`: the worker holds this job's release at that block, so the answer is a delta from it
    (release_format): only the records added since carry a key, the ones gone are named by id. The
    selection at both blocks is the same consent rule; a delta tells nothing a full release would not.
    """
    if not job_key:
        raise DomainError("A release needs a job key.", field="job_key", code="job_key_required")
    _check_releasable(hospital, pinned_block)
    if known_block is not None:
        _check_releasable(hospital, known_block)
    public_key = hospital_public_key(hospital=hospital)
    # Reads only, outside any transaction (on SQLite every transaction takes the write lock): five
    # hospitals' releases of a round run side by side. Only new access-log entries take a transaction.
    removed: list[str] = []
    if known_block is None:
        rows = list(_releasable(hospital, pinned_block).order_by(*_ORDER).values_list(*_FIELDS))
        per_patient = Counter(row[1] for row in rows)
    else:
        # The two selections are compared in the database: only the difference comes back (a round's
        # delta is usually empty), and the records per patient as counts, not one row per record.
        now, then = _releasable(hospital, pinned_block), _releasable(hospital, known_block)
        rows = list(now.exclude(pk__in=then.values("pk")).order_by(*_ORDER).values_list(*_FIELDS))
        gone = then.exclude(pk__in=now.values("pk")).order_by(*_ORDER).values_list("id", flat=True)
        removed = [str(record_id) for record_id in gone]
        per_patient = _records_per_patient(now)
    released = [_released(*row) for row in rows]
    # Sealed before anything is logged: a release that fails to seal leaves no log entry behind.
    sealed = seal_records(
        released,
        job_key=job_key,
        hospital_account=hospital.account_address,
        pinned_block=pinned_block,
        public_key=public_key,
        base_block=known_block,
        removed=removed,
    )
    _log_release(hospital, job_key=job_key, pinned_block=pinned_block, per_patient=per_patient)
    record_count = sum(per_patient.values())
    logger.info(
        "release for job %s to %s at block %s: %s records of %s patients (%s)",
        job_key,
        hospital.slug,
        pinned_block,
        record_count,
        len(per_patient),
        "full"
        if known_block is None
        else f"from block {known_block}: {len(released)} new, {len(removed)} gone",
    )
    return SealedRelease(
        job_key=job_key,
        hospital_slug=hospital.slug,
        hospital_account=hospital.account_address,
        pinned_block=pinned_block,
        record_count=record_count,
        patient_count=len(per_patient),
        sealed_bytes=sealed,
    )


def _check_releasable(hospital: Hospital, pinned_block: int) -> None:
    if not hospital.active:
        raise HospitalInactive(f"Hospital {hospital.slug} is not active in the Directory.")
    if pinned_block < 0:
        raise DomainError("A pinned block is not negative.", field="pinned_block", code="bad_block")
    indexed = (
        IndexerCursor.objects.filter(chain_id=client.chain_id()).values_list("last_block", flat=True).first()
    )
    if indexed is None or pinned_block > indexed:
        raise BlockNotIndexed(
            f"Block {pinned_block} is not indexed yet (indexed up to {indexed}); consents may be missing."
        )


def _releasable(hospital: Hospital, pinned_block: int) -> QuerySet[Record]:
    """The records THE consent rule lets the hospital's account use for TRAINING at the block (FHIR only)."""
    consents = consent_rule.covering_consents(
        grantee_address=hospital.account_address, purpose=Purpose.TRAINING, at_block=pinned_block
    )
    # Only the consenting patients' records are looked at (by the patient index), not every record.
    records = Record.objects.filter(
        patient_address__in=consents.values("patient_address"), content_type=FHIR_JSON
    )
    return records.filter(consent_rule.covered_records(consents, records=records))


def _records_per_patient(records: QuerySet[Record]) -> Counter[str]:
    """How many of the records each patient has (one row per patient)."""
    counts = records.order_by().values("patient_address").annotate(n=Count("id"))
    return Counter({row["patient_address"]: row["n"] for row in counts})


def released_patients(*, hospital: Hospital, pinned_block: int) -> set[str]:
    """The patients whose records a release to `hospital` at `pinned_block` holds (checksummed addresses):
    the coordinator checks an update's patients against them without unwrapping any key."""
    rows = _releasable(hospital, pinned_block).order_by().values_list("patient_address", flat=True).distinct()
    return {to_checksum_address(address) for address in rows}


def _released(
    record_id: uuid.UUID, patient_address: str, cid: str, digest: str, content_type: str, wrapped_key: bytes
) -> ReleasedRecord:
    data_key = keys.unwrap_data_key(
        wrapped_key=bytes(wrapped_key), record_id=record_id, patient_address=patient_address
    )
    return ReleasedRecord(
        record_id=str(record_id),
        patient_address=patient_address,
        cid=cid,
        digest=digest,
        content_type=content_type,
        data_key=data_key,
    )


def _log_release(hospital: Hospital, *, job_key: str, pinned_block: int, per_patient: Counter[str]) -> int:
    """One TRAINING "release" entry per patient not yet logged for (job, hospital); returns how many.
    `per_patient`: each released patient's number of records (the entry counts them)."""
    if not set(per_patient) - _already_logged(hospital, job_key, list(per_patient)):
        return 0  # the usual later round: nothing to write, no transaction
    with transaction.atomic():
        # One logger per hospital at a time: two releases for the same job must not both log a patient.
        Hospital.objects.select_for_update().get(pk=hospital.pk)
        new = sorted(set(per_patient) - _already_logged(hospital, job_key, list(per_patient)))
        return _log_new(
            hospital, job_key=job_key, pinned_block=pinned_block, new=new, per_patient=per_patient
        )


def _log_new(
    hospital: Hospital, *, job_key: str, pinned_block: int, new: list[str], per_patient: Counter[str]
) -> int:
    if not new:
        return 0
    bases = consent_rule.legal_bases(
        grantee_address=hospital.account_address,
        purpose=Purpose.TRAINING,
        patient_addresses=new,
        at_block=pinned_block,
    )
    events = [
        AccessEvent(
            patient_address=patient,
            actor=None,  # the hospital itself, named by its account address
            actor_address=hospital.account_address,
            action=AccessAction.RELEASE,
            purpose=AccessPurpose.TRAINING,
            outcome=AccessOutcome.ALLOWED,
            legal_basis=bases[patient],
            detail={
                "job": job_key,
                "hospital": hospital.slug,
                "records": per_patient[patient],
                "pinned_block": pinned_block,
            },
        )
        for patient in new
    ]
    record_accesses(events)
    return len(events)


def _already_logged(hospital: Hospital, job_key: str, patients: list[str]) -> set[str]:
    logged: set[str] = set()
    for start in range(0, len(patients), _LOOKUP_CHUNK):
        logged.update(
            AccessLogEntry.objects.filter(
                patient_address__in=patients[start : start + _LOOKUP_CHUNK],
                action=AccessAction.RELEASE,
                detail__job=job_key,
                detail__hospital=hospital.slug,
            ).values_list("patient_address", flat=True)
        )
    return logged
