"""Record services: who may write and read (`authorize_write`, `decide_access`), creating and importing
records (`create_record`, `create_file_record`, `import_bundle`), and THE one door that decrypts a record
(`open_record`). Nothing else in HealthHash unwraps a record key.

Creation is atomic from the user's view: seal -> store add -> one database transaction holding the
record rows and the access-log entry. If the database part fails the stored blobs are removed again; if
the store is down nothing is written (503). Records are created unanchored: the batcher (ehr.anchoring)
anchors them later as one Merkle root per batch, so the chain being down only delays the anchor.
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
from access.audit.decisions import AccessDecision
from access.consent import rule as consent_rule
from access.identity.selectors import is_active_doctor
from access.identity.users import address_of
from access.models import AccessAction, AccessOutcome, AccessPurpose, BreakGlass, Consent, Purpose, Role, User
from ehr import anchoring, fhir, keys, store
from ehr.models import Record
from ehr.record_content import PreparedRecord, RecordContent, invalid_fhir, prepare_fhir, prepare_file, unpack
from ehr.record_quota import require_record_quota
from healthhash.errors import DomainError, Forbidden, NotFound


class AccessDenied(Forbidden):
    """403 whose `error` code is the reason: no_consent, expired or revoked."""


class UnknownPatient(NotFound):
    code = "unknown_patient"


class Tampered(DomainError):
    code = "tampered"
    status_code = 409


@dataclass(frozen=True)
class OpenedRecord:
    record: Record
    resource: dict[str, Any]  # the FHIR resource; a DocumentReference for a file
    file_bytes: bytes | None
    decision: AccessDecision


# --------------------------------------------------------------------------- decisions


def _consent_decision(
    *, patient_address: str, actor: User, purpose: AccessPurpose, record_id: uuid.UUID | None, category: str
) -> AccessDecision:
    checked = consent_rule.check(
        patient_address=patient_address,
        grantee_address=address_of(actor),
        purpose=Purpose[purpose].value,
        record_id=record_id,
        category=category,
    )
    return AccessDecision.by_consent(checked, purpose=purpose)


def _knows_patient(actor: User, patient_address: str) -> bool:
    """Has this doctor ever held a consent or a break-glass on the patient? (decides 403 vs 404)."""
    return (
        Consent.objects.filter(patient_address=patient_address, grantee_address=actor.eth_address).exists()
        or BreakGlass.objects.filter(doctor=actor, patient_address=patient_address).exists()
    )


def _inactive_doctor(actor: User, patient_address: str, purpose: AccessPurpose) -> AccessDecision:
    """Deactivated in the Directory (or the hospital is): consents on chain no longer let them in."""
    return AccessDecision.denied(
        "not_active_doctor", purpose=purpose, knows_patient=_knows_patient(actor, patient_address)
    )


def decide_access(
    *, record: Record, actor: User, purpose: AccessPurpose | str = AccessPurpose.TREATMENT
) -> AccessDecision:
    """May `actor` read `record` for `purpose`? Owner, then consent, then a live break-glass.

    Patients read their own records. A doctor reads through an active (not expired, not revoked)
    consent for the purpose whose scope is the record, its category or the whole chart, as indexed
    from the chain (access's consent rule); failing that, for TREATMENT, through a live break-glass on
    the patient. Kept apart from `open_record` so a hospital's training job can be decided the same way.
    """
    purpose = AccessPurpose(purpose)
    if actor.pk == record.patient_id:
        return AccessDecision.owner()
    if actor.role != Role.DOCTOR or not actor.eth_address:
        return AccessDecision.denied("no_consent", purpose=purpose, knows_patient=False)
    if not is_active_doctor(actor):
        return _inactive_doctor(actor, record.patient_address, purpose)
    decision = _consent_decision(
        patient_address=record.patient_address,
        actor=actor,
        purpose=purpose,
        record_id=record.id,
        category=record.category,
    )
    if decision.allowed:
        return decision
    if purpose == AccessPurpose.TREATMENT:
        glass = breakglass.live_break_glass(doctor=actor, patient_address=record.patient_address)
        if glass is not None:
            return AccessDecision.by_break_glass(glass.id)
    return decision.knowing(_knows_patient(actor, record.patient_address))


def authorize_write(*, actor: User, patient: User, categories: Iterable[str]) -> AccessDecision:
    """The WRITE rule: who may add records to a patient's chart.

    The patient may add to their own chart. A doctor may add a record when they hold an active
    TREATMENT consent whose scope is the whole chart or the record's category: a TREATMENT consent
    lets the doctor read AND add records within its scope. A record scope (one existing record) never
    lets a doctor add new records, and a break-glass is for reading only. Everyone else may not.
    """
    if actor.pk == patient.pk:
        return AccessDecision.owner()
    treatment = AccessPurpose.TREATMENT
    denied = AccessDecision.denied("no_consent", purpose=treatment, knows_patient=False)
    patient_address = patient.eth_address
    if actor.role != Role.DOCTOR or not actor.eth_address or not patient_address:
        return denied
    if not is_active_doctor(actor):
        return _inactive_doctor(actor, patient_address, treatment)
    decision = denied
    for category in sorted(set(categories)):
        decision = _consent_decision(
            patient_address=patient_address,
            actor=actor,
            purpose=treatment,
            record_id=None,
            category=category,
        )
        if not decision.allowed:
            break
    if not decision.allowed:
        return decision.knowing(_knows_patient(actor, patient_address))
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

    Resources that are not health records (Patient, Practitioner, Organization...) and entries without
    a resource (a transaction's DELETE or GET: records are never deleted or read by import) are skipped
    and reported. The bulk path: validate the whole bundle once, seal each resource, store all blobs in
    one batch, then one transaction with every row and one access-log entry.
    """
    try:
        entries = fhir.bundle_entries(bundle)
    except fhir.FhirValidationError as exc:
        raise invalid_fhir(exc) from None
    report = ImportReport()
    prepared: list[PreparedRecord] = []
    for entry in entries:
        if entry.resource is None:
            what = f"{entry.method} entry" if entry.method else "entry"
            report.skipped.append(
                {"index": entry.index, "resourceType": None, "reason": f"{what} has no resource to import"}
            )
            continue
        raw = bundle["entry"][entry.index]["resource"]
        if raw["resourceType"] in fhir.NON_RECORD_TYPES:
            report.skipped.append(
                {"index": entry.index, "resourceType": raw["resourceType"], "reason": "not a health record"}
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
    # Each record costs the relayer an anchor: a per-actor daily quota, checked before sealing.
    require_record_quota(actor=actor, adding=len(prepared))
    address = address_of(patient)
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
    # No outbox item here: ehr.anchoring batches new records into one Merkle root per batch.
    records = [
        Record(
            id=p.record_id,
            patient=patient,
            patient_address=address_of(patient),
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
        )
        for p, s, cid, digest in zip(prepared, sealed, cids, digests, strict=True)
    ]
    Record.objects.bulk_create(records, batch_size=500)
    audit.log_decision(
        decision,
        patient_address=patient.eth_address,
        actor=actor,
        action=AccessAction.CREATE,
        record_id=records[0].id if len(records) == 1 else None,
        detail={"records": len(records), "categories": sorted({r.category for r in records})},
    )
    return records


# --------------------------------------------------------------------------- the one door


def _log_now(
    record: Record,
    actor: User,
    decision: AccessDecision,
    *,
    action: AccessAction,
    outcome: AccessOutcome | None = None,
    reason: str = "",
) -> None:
    """Opens, denials and integrity failures are committed on their own: a request that fails after
    them must not take its entry with it."""
    with transaction.atomic():
        audit.log_decision(
            decision,
            patient_address=record.patient_address,
            actor=actor,
            action=action,
            outcome=outcome,
            record_id=record.id,
            reason=reason,
        )


def open_record(
    *, record_id: uuid.UUID | str, actor: User, purpose: AccessPurpose | str = AccessPurpose.TREATMENT
) -> OpenedRecord:
    """THE one door: decide, log, then fetch, verify and decrypt one record.

    404 if the record does not exist or the actor may not even know it does; 403 with the reason
    (no_consent, expired, revoked) for a doctor whose consent does not cover it; every denial is
    logged too. The sealed bytes must hash to the stored digest, and the digest must prove into the root
    anchored on chain for the record's batch (once anchored); otherwise 409 "tampered" and a "tamper"
    entry in the patient's access log, never the bytes.
    """
    try:
        record = (
            Record.objects.select_related("anchor_batch", "created_by")  # created_by: the answer names them
            .filter(pk=uuid.UUID(str(record_id)))
            .first()
        )
    except ValueError:
        record = None
    if record is None:
        raise NotFound("no such record")
    decision = decide_access(record=record, actor=actor, purpose=purpose)
    if not decision.allowed:
        _log_now(record, actor, decision, action=AccessAction.DENY, reason=decision.reason)
        if not decision.knows_patient:
            raise NotFound("no such record")
        raise AccessDenied(f"access to this record is denied: {decision.reason}", code=decision.reason)
    _log_now(record, actor, decision, action=AccessAction.OPEN)
    content = read_verified(record, actor=actor, decision=decision)
    return OpenedRecord(record, content.resource, content.file_bytes, decision)


def _check_anchor(record: Record) -> None:
    """Once its batch is anchored, the record's leaf (id, patient, digest) must prove into the root the chain
    holds (as indexed: no RPC per open; `manage.py verify_records` re-reads the roots from the chain)."""
    if record.anchor_mismatch:
        raise Tampered("the root anchored on chain for the record's batch differs from the computed one")
    anchored_root = anchoring.anchored_root_of(record)
    if anchored_root is not None and not anchoring.proves_inclusion(record, anchored_root):
        raise Tampered("the record's digest is not in the Merkle root anchored on chain")


def read_verified(record: Record, *, actor: User, decision: AccessDecision) -> RecordContent:
    """Fetch, verify and decrypt, for a caller that has decided and logged already (open, export).

    Bytes that are present but altered: 409 `tampered` and a "tamper" entry. Bytes that are gone (410
    `missing`) or a store that cannot be read (503 `storage_unavailable`): an "open" entry with outcome
    "error", never a tamper alert, since lost data is not an attack. No message names a storage path.
    """
    try:
        sealed_bytes = store.cat(record.cid)
        if hashlib.sha256(sealed_bytes).hexdigest() != record.digest:
            raise Tampered("the stored bytes do not match the record's digest")
        _check_anchor(record)
        plaintext = keys.open_content(
            sealed_bytes,
            wrapped_key=bytes(record.wrapped_key),  # PostgreSQL hands bytea out as memoryview
            record_id=record.id,
            patient_address=record.patient_address,
        )
        return unpack(plaintext, content_type=record.content_type)
    except (store.StoredBytesMissing, store.StoreUnavailable) as exc:
        reason = f"{exc.code}: {exc.detail}"
        _log_now(
            record, actor, decision, action=AccessAction.OPEN, outcome=AccessOutcome.ERROR, reason=reason
        )
        raise type(exc)(f"record {record.id} cannot be read: {exc.detail}") from exc
    except (store.StoredBytesBroken, keys.SealedContentBroken, Tampered, ValueError) as exc:
        # Domain errors carry fixed sentences; a bare ValueError (a broken envelope) gets one too.
        detail = getattr(exc, "detail", None) or "the decrypted content is not in the record's format"
        _log_now(
            record, actor, decision, action=AccessAction.TAMPER, outcome=AccessOutcome.ERROR, reason=detail
        )
        raise Tampered(f"record {record.id} failed its integrity check: {detail}") from exc
