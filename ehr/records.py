"""Record services: who may write and read (`authorize_write`, `decide_access`), creating and importing
records (`create_record`, `create_file_record`, `import_bundle`), and THE one door that decrypts a record
(`open_record`). Nothing else in HealthHash unwraps a record key.

Creation is atomic from the user's view: seal -> store add -> one database transaction holding the
record rows, their anchor outbox items and the access-log entry. If the database part fails the stored
blobs are removed again; if the store is down nothing is written (503). The chain being down only
delays the anchor: its outbox item waits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from access.audit import breakglass
from access.audit import log as audit
from access.consent import selectors as consent_selectors
from access.identity.selectors import is_active_doctor
from access.models import BreakGlass, Consent, Purpose, Role, User
from contracts import outbox
from ehr import fhir, keys, store
from ehr.models import Record
from ehr.record_content import PreparedRecord, RecordContent, invalid_fhir, prepare_fhir, prepare_file, unpack
from healthhash.errors import DomainError, Forbidden, NotFound

ANCHOR_KIND = "anchor.record"


class AccessDenied(Forbidden):
    """403 whose `error` code is the reason: no_consent, expired or revoked."""


class UnknownPatient(NotFound):
    code = "unknown_patient"


class Tampered(DomainError):
    code = "tampered"
    status_code = 409


@dataclass(frozen=True)
class AccessDecision:
    """Why an actor may (or may not) use a patient's record; `legal_basis` is what the access log names."""

    allowed: bool
    reason: str  # owner | consent | break_glass | no_consent | expired | revoked
    purpose: str  # OWNER | TREATMENT | TRAINING | EMERGENCY
    legal_basis: str  # owner | consent:<uuid>@<block> | break_glass:<id> | none
    # False when the actor has no relationship with the patient at all: such callers get 404, not 403.
    knows_patient: bool = True


@dataclass(frozen=True)
class OpenedRecord:
    record: Record
    resource: dict[str, Any]  # the FHIR resource; a DocumentReference for a file
    file_bytes: bytes | None
    decision: AccessDecision


def anchor_record_id(record_id: uuid.UUID) -> str:
    """The bytes32 a record id is anchored under: the 16 uuid bytes, right-aligned (as a uint128)."""
    return "0x" + record_id.hex.rjust(64, "0")


def record_id_from_anchor(value: str) -> uuid.UUID | None:
    digits = value.removeprefix("0x")
    if len(digits) != 64 or digits[:32].strip("0"):
        return None
    return uuid.UUID(digits[32:])


# --------------------------------------------------------------------------- decisions


def _consent_decision(
    *, patient_address: str, actor: User, purpose: str, record_id: uuid.UUID | None, category: str
) -> AccessDecision:
    checked = consent_selectors.is_allowed(
        patient_address=patient_address,
        grantee_address=actor.eth_address,
        purpose=Purpose[purpose].value,
        record_id=record_id,
        category=category,
    )
    if checked.allowed:
        return AccessDecision(
            True, "consent", purpose, f"consent:{checked.consent_id}@{checked.granted_block}"
        )
    # A revocation accepted but not yet mined already denies; to the doctor it is a revocation.
    reason = "revoked" if checked.reason in ("revoked", "revocation_pending") else checked.reason
    return AccessDecision(False, reason, purpose, "none")


def _knows_patient(actor: User, patient_address: str) -> bool:
    """Has this doctor ever held a consent or a break-glass on the patient? (decides 403 vs 404)."""
    return (
        Consent.objects.filter(patient_address=patient_address, grantee_address=actor.eth_address).exists()
        or BreakGlass.objects.filter(doctor=actor, patient_address=patient_address).exists()
    )


def decide_access(*, record: Record, actor: User, purpose: str = "TREATMENT") -> AccessDecision:
    """May `actor` read `record` for `purpose`? Owner, then consent, then a live break-glass.

    Patients read their own records. A doctor reads through an active (not expired, not revoked)
    consent for the purpose whose scope is the record, its category or the whole chart, as indexed
    from the chain; failing that, for TREATMENT, through a live break-glass on the patient. Kept apart
    from `open_record` so a hospital's training job can be decided the same way later.
    """
    if actor.pk == record.patient_id:
        return AccessDecision(True, "owner", "OWNER", "owner")
    if actor.role != Role.DOCTOR or not actor.eth_address:
        return AccessDecision(False, "no_consent", purpose, "none", knows_patient=False)
    if not is_active_doctor(actor):
        # Deactivated in the Directory (or the hospital is): consents on chain no longer let them in.
        return AccessDecision(
            False, "not_active_doctor", purpose, "none", _knows_patient(actor, record.patient_address)
        )
    decision = _consent_decision(
        patient_address=record.patient_address,
        actor=actor,
        purpose=purpose,
        record_id=record.id,
        category=record.category,
    )
    if decision.allowed:
        return decision
    if purpose == "TREATMENT":
        glass = breakglass.live_break_glass(doctor=actor, patient_address=record.patient_address)
        if glass is not None:
            return AccessDecision(True, "break_glass", "EMERGENCY", f"break_glass:{glass.id}")
    knows = _knows_patient(actor, record.patient_address)
    return AccessDecision(False, decision.reason, purpose, "none", knows_patient=knows)


def authorize_write(*, actor: User, patient: User, categories: Iterable[str]) -> AccessDecision:
    """The WRITE rule: who may add records to a patient's chart.

    The patient may add to their own chart. A doctor may add a record when they hold an active
    TREATMENT consent whose scope is the whole chart or the record's category: a TREATMENT consent
    lets the doctor read AND add records within its scope. A record scope (one existing record) never
    lets a doctor add new records, and a break-glass is for reading only. Everyone else may not.
    """
    if actor.pk == patient.pk:
        return AccessDecision(True, "owner", "OWNER", "owner")
    denied = AccessDecision(False, "no_consent", "TREATMENT", "none", knows_patient=False)
    if actor.role != Role.DOCTOR or not actor.eth_address:
        return denied
    if not is_active_doctor(actor):
        return AccessDecision(
            False, "not_active_doctor", "TREATMENT", "none", _knows_patient(actor, patient.eth_address)
        )
    decision = denied
    for category in sorted(set(categories)):
        decision = _consent_decision(
            patient_address=patient.eth_address,
            actor=actor,
            purpose="TREATMENT",
            record_id=None,
            category=category,
        )
        if not decision.allowed:
            break
    if not decision.allowed:
        return AccessDecision(
            False, decision.reason, "TREATMENT", "none", _knows_patient(actor, patient.eth_address)
        )
    return decision


def _require_write(*, actor: User, patient: User, categories: Iterable[str]) -> AccessDecision:
    if patient.role != Role.PATIENT or not patient.eth_address:
        raise UnknownPatient("no such patient", field="patient")
    decision = authorize_write(actor=actor, patient=patient, categories=categories)
    if not decision.allowed:
        if not decision.knows_patient:
            raise UnknownPatient("no such patient", field="patient")
        raise AccessDenied(
            f"no active consent lets you add these records ({decision.reason})", code=decision.reason
        )
    return decision


# --------------------------------------------------------------------------- writes


@dataclass
class ImportReport:
    records: list[Record] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"index", "resourceType", "reason"}


def create_record(*, actor: User, patient: User, resource: Any) -> Record:
    """Create one record from a FHIR resource (validated here) in `patient`'s chart."""
    prepared = prepare_fhir(resource)
    decision = _require_write(actor=actor, patient=patient, categories=[prepared.category])
    return _persist(actor=actor, patient=patient, prepared=[prepared], decision=decision)[0]


def create_file_record(
    *,
    actor: User,
    patient: User,
    data: bytes,
    declared_type: str,
    title: str = "",
    category: str = "document",
) -> Record:
    """Create one record from an uploaded PDF, PNG, JPEG or DICOM file, carried as a DocumentReference."""
    prepared = prepare_file(
        data,
        declared_type=declared_type,
        title=title,
        category=category,
        patient_address=patient.eth_address or "",
    )
    decision = _require_write(actor=actor, patient=patient, categories=[prepared.category])
    return _persist(actor=actor, patient=patient, prepared=[prepared], decision=decision)[0]


def import_bundle(*, actor: User, patient: User, bundle: Any) -> ImportReport:
    """Split a transaction or collection Bundle into one record per resource, all or nothing.

    Resources that are not health records (Patient, Practitioner, Organization...) are skipped and
    reported. The bulk path: validate the whole bundle once, seal each resource, store all blobs in one
    batch, then one transaction with every row, outbox item and one access-log entry.
    """
    try:
        validated = fhir.split_bundle(bundle)
    except fhir.FhirValidationError as exc:
        raise invalid_fhir(exc) from None
    report = ImportReport()
    prepared: list[PreparedRecord] = []
    for index, (entry, _resource) in enumerate(zip(bundle.get("entry") or [], validated, strict=True)):
        raw = entry["resource"]
        if raw["resourceType"] in fhir.NON_RECORD_TYPES:
            report.skipped.append(
                {"index": index, "resourceType": raw["resourceType"], "reason": "not a health record"}
            )
            continue
        prepared.append(prepare_fhir(raw, validated=True))
    if prepared:
        decision = _require_write(actor=actor, patient=patient, categories={p.category for p in prepared})
        report.records = _persist(actor=actor, patient=patient, prepared=prepared, decision=decision)
    return report


def _persist(
    *, actor: User, patient: User, prepared: list[PreparedRecord], decision: AccessDecision
) -> list[Record]:
    address = patient.eth_address
    sealed = [
        keys.seal_content(p.plaintext, record_id=p.record_id, patient_address=address) for p in prepared
    ]
    cids = store.add_many([s.sealed_bytes for s in sealed])
    try:
        with transaction.atomic():
            return _insert_rows(
                actor=actor, patient=patient, prepared=prepared, sealed=sealed, cids=cids, decision=decision
            )
    except BaseException:
        store.remove_quietly(cids)  # no unreferenced blob kept
        raise


def _insert_rows(
    *,
    actor: User,
    patient: User,
    prepared: list[PreparedRecord],
    sealed: list[keys.SealedContent],
    cids: list[str],
    decision: AccessDecision,
) -> list[Record]:
    now = timezone.now()
    digests = [hashlib.sha256(s.sealed_bytes).hexdigest() for s in sealed]
    # Record ids are fresh, so their idempotency keys are too: one INSERT for all anchors.
    items = outbox.enqueue_many(
        [
            (
                ANCHOR_KIND,
                {
                    "recordId": anchor_record_id(p.record_id),
                    "patient": patient.eth_address,
                    "digest": "0x" + digest,
                },
                f"{ANCHOR_KIND}:{p.record_id}",
            )
            for p, digest in zip(prepared, digests, strict=True)
        ]
    )
    records = [
        Record(
            id=p.record_id,
            patient=patient,
            patient_address=patient.eth_address,
            category=p.category,
            resource_type=p.resource_type,
            content_type=p.content_type,
            created_by=actor,
            created_at=now,
            cid=cid,
            sealed_size=len(s.sealed_bytes),
            digest=digest,
            wrapped_key=s.wrapped_key,
            key_id=s.key_id,
            anchor_outbox=item,
        )
        for p, s, cid, digest, item in zip(prepared, sealed, cids, digests, items, strict=True)
    ]
    Record.objects.bulk_create(records, batch_size=500)
    audit.record_access(
        audit.AccessEvent(
            patient_address=patient.eth_address,
            actor=actor,
            actor_address=actor.eth_address or "",
            action="create",
            purpose=decision.purpose,
            outcome="allowed",
            legal_basis=decision.legal_basis,
            record_id=str(records[0].id) if len(records) == 1 else None,
            detail={"records": len(records), "categories": sorted({r.category for r in records})},
        )
    )
    return records


# --------------------------------------------------------------------------- the one door


def _event(record: Record, actor: User, decision: AccessDecision, **fields: Any) -> audit.AccessEvent:
    return audit.AccessEvent(
        patient_address=record.patient_address,
        actor=actor,
        actor_address=actor.eth_address or "",
        purpose=decision.purpose,
        legal_basis=decision.legal_basis,
        record_id=str(record.id),
        **fields,
    )


def _log_now(event: audit.AccessEvent) -> None:
    """Denials and tamper alerts are committed on their own: the request that caused them fails."""
    with transaction.atomic():
        audit.record_access(event)


def open_record(*, record_id: uuid.UUID | str, actor: User, purpose: str = "TREATMENT") -> OpenedRecord:
    """THE one door: decide, log, then fetch, verify and decrypt one record.

    404 if the record does not exist or the actor may not even know it does; 403 with the reason
    (no_consent, expired, revoked) for a doctor whose consent does not cover it; every denial is
    logged too. The sealed bytes must hash to the stored digest (and the anchored one, once anchored);
    otherwise 409 "tampered" and a "tamper" entry in the patient's access log, never the bytes.
    """
    try:
        record = Record.objects.filter(pk=uuid.UUID(str(record_id))).first()
    except ValueError:
        record = None
    if record is None:
        raise NotFound("no such record")
    decision = decide_access(record=record, actor=actor, purpose=purpose)
    if not decision.allowed:
        _log_now(_event(record, actor, decision, action="deny", outcome="denied", reason=decision.reason))
        if not decision.knows_patient:
            raise NotFound("no such record")
        raise AccessDenied(f"access to this record is denied: {decision.reason}", code=decision.reason)
    _log_now(_event(record, actor, decision, action="open", outcome="allowed"))
    content = read_verified(record, actor=actor, decision=decision)
    return OpenedRecord(record, content.resource, content.file_bytes, decision)


def read_verified(record: Record, *, actor: User, decision: AccessDecision) -> RecordContent:
    """Fetch, verify and decrypt, for a caller that has decided and logged already (open, export)."""
    try:
        sealed_bytes = store.cat(record.cid)
        if hashlib.sha256(sealed_bytes).hexdigest() != record.digest:
            raise Tampered("the stored bytes do not match the record's digest")
        if record.anchor_mismatch:
            raise Tampered("the digest anchored on chain differs from the record's digest")
        plaintext = keys.open_content(
            sealed_bytes,
            wrapped_key=record.wrapped_key,
            record_id=record.id,
            patient_address=record.patient_address,
        )
        return unpack(plaintext, content_type=record.content_type)
    except (store.StoredBytesBroken, keys.SealedContentBroken, Tampered, ValueError) as exc:
        detail = str(getattr(exc, "detail", exc))
        _log_now(_event(record, actor, decision, action="tamper", outcome="error", reason=detail))
        raise Tampered(f"record {record.id} failed its integrity check: {detail}") from exc
