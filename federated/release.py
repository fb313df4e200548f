"""Dataset releases, the server side: which records a hospital may train on at a pinned block, their
data keys sealed once to the hospital's public key, and one access-log entry per included patient.

Selection is THE consent rule's queryset form (access.consent.rule.covering_consents + covered_records)
with grantee the hospital's account and purpose TRAINING, asked as of the pinned block. The KEK stays
here: data keys are unwrapped in this process and leave it only inside the sealed release. The wire
format is federated.release_format's.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db import transaction
from django.db.models import QuerySet
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


class HospitalInactive(Conflict):
    code = "hospital_inactive"


class BlockNotIndexed(Conflict):
    """The pinned block is ahead of the indexer: the consent rows would not yet show that block."""

    code = "block_not_indexed"


def release_dataset(*, hospital: Hospital, job_key: str, pinned_block: int) -> SealedRelease:
    """Seal to `hospital` the records it may train on as of `pinned_block`, for job `job_key`.

    Only FHIR JSON records are released (the training tasks read FHIR; files stay home). Each included
    patient gets one access-log entry per (job, hospital): a later release for the same pair logs only
    the patients not logged before (e.g. consents granted since the last pinned block).
    """
    if not job_key:
        raise DomainError("A release needs a job key.", field="job_key", code="job_key_required")
    _check_releasable(hospital, pinned_block)
    public_key = hospital_public_key(hospital=hospital)
    with transaction.atomic():
        # One release per hospital at a time: two for the same job must not both log the same patient.
        locked = Hospital.objects.select_for_update().get(pk=hospital.pk)
        records = _released_rows(locked, pinned_block)
        released = [_released(row) for row in records]
        # Sealed inside the transaction: a release that fails to seal leaves no log entry behind.
        sealed = seal_records(
            released,
            job_key=job_key,
            hospital_account=locked.account_address,
            pinned_block=pinned_block,
            public_key=public_key,
        )
        _log_release(locked, job_key=job_key, pinned_block=pinned_block, records=records)
    patients = {row.patient_address for row in records}
    logger.info(
        "release for job %s to %s at block %s: %s records of %s patients",
        job_key,
        locked.slug,
        pinned_block,
        len(released),
        len(patients),
    )
    return SealedRelease(
        job_key=job_key,
        hospital_slug=locked.slug,
        hospital_account=locked.account_address,
        pinned_block=pinned_block,
        record_count=len(released),
        patient_count=len(patients),
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
    covered = consent_rule.covered_records(consents, records=Record.objects.all())
    return Record.objects.filter(covered, content_type=FHIR_JSON)


def _released_rows(hospital: Hospital, pinned_block: int) -> list[Record]:
    return list(
        _releasable(hospital, pinned_block)
        .order_by("patient_address", "id")
        .only("id", "patient_address", "cid", "digest", "content_type", "wrapped_key")
    )


def released_patients(*, hospital: Hospital, pinned_block: int) -> set[str]:
    """The patients whose records a release to `hospital` at `pinned_block` holds (checksummed addresses):
    the coordinator checks an update's patients against them without unwrapping any key."""
    rows = _releasable(hospital, pinned_block).order_by().values_list("patient_address", flat=True).distinct()
    return {to_checksum_address(address) for address in rows}


def _released(row: Record) -> ReleasedRecord:
    data_key = keys.unwrap_data_key(
        wrapped_key=bytes(row.wrapped_key), record_id=row.id, patient_address=row.patient_address
    )
    return ReleasedRecord(
        record_id=str(row.id),
        patient_address=row.patient_address,
        cid=row.cid,
        digest=row.digest,
        content_type=row.content_type,
        data_key=data_key,
    )


def _log_release(hospital: Hospital, *, job_key: str, pinned_block: int, records: list[Record]) -> int:
    """One TRAINING "release" entry per patient not yet logged for (job, hospital); returns how many."""
    per_patient = Counter(row.patient_address for row in records)
    new = sorted(set(per_patient) - _already_logged(hospital, job_key, list(per_patient)))
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
