"""Access requests: a doctor asks a patient for a consent (scope, purpose, expiry, reason); the patient
approves by signing a grant through access.consent.services — the same or a narrower scope, the same or
an earlier expiry — or declines. Only the two parties ever see a request; to anyone else it is 404.

Narrower means: chart > category:<c> > record:<id> of category c. Whether a record is of a category is
known only to the records app, which registers `register_record_category_lookup` (access may not import
ehr); without one, a record is never taken to be within a category (fail closed).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from access.audit.breakglass import patient_by_address
from access.consent import services as consent_services
from access.consent.payloads import verify_signed_grant
from access.consent.scopes import Scope, check_scope_belongs_to, parse_scope
from access.identity.selectors import active_doctor
from access.identity.users import address_of
from access.models import AccessRequest, RequestStatus, Role, User
from healthhash.errors import Conflict, DomainError, NotFound

# record id -> its category, or None when unknown. Registered by the records app.
RecordCategoryLookup = Callable[[uuid.UUID], str | None]
_category_lookups: list[RecordCategoryLookup] = []


class BadAccessRequest(DomainError):
    code = "bad_request_terms"


def register_record_category_lookup(lookup: RecordCategoryLookup) -> None:
    """Called by the records app in its AppConfig.ready()."""
    if lookup not in _category_lookups:
        _category_lookups.append(lookup)


def _record_category(record_id: str) -> str | None:
    for lookup in _category_lookups:
        category = lookup(uuid.UUID(record_id))
        if category:
            return category
    return None


def is_narrower_or_equal(granted: Scope, asked: Scope) -> bool:
    """chart covers all; a category covers itself and its records; a record covers itself only."""
    if asked.kind == "chart" or granted == asked:
        return True
    if asked.kind == "category" and granted.kind == "record":
        return _record_category(granted.value) == asked.value
    return False


@transaction.atomic
def request_access(
    *,
    doctor: User,
    patient_address: str,
    scope: str,
    purpose: object,
    expires_at: dt.datetime | None,
    reason: str,
) -> AccessRequest:
    profile = active_doctor(doctor, to="ask for access")
    patient = patient_by_address(patient_address)
    parsed = parse_scope(scope)
    check_scope_belongs_to(parsed, patient_address=address_of(patient))
    purpose_value = consent_services.parse_purpose(purpose)
    if expires_at is not None and expires_at <= timezone.now():
        raise BadAccessRequest("expires_at must be in the future", field="expires_at")
    reason = (reason or "").strip()
    if not reason:
        raise BadAccessRequest("a reason is required", field="reason")
    duplicate = AccessRequest.objects.filter(
        doctor=doctor, patient=patient, scope=str(parsed), purpose=purpose_value, status=RequestStatus.PENDING
    )
    if duplicate.exists():
        raise Conflict(
            "you already asked this patient for this access; wait for the answer", code="request_pending"
        )
    return AccessRequest.objects.create(
        doctor=doctor,
        hospital=profile.hospital,
        patient=patient,
        patient_address=address_of(patient),
        scope=str(parsed),
        purpose=purpose_value,
        expires_at=expires_at,
        reason=reason,
    )


def requests_visible_to(user: User) -> QuerySet[AccessRequest]:
    """Patients see the requests made to them, doctors those they made; nobody else sees any."""
    if user.role not in (Role.PATIENT, Role.DOCTOR):
        return AccessRequest.objects.none()
    return AccessRequest.objects.filter(Q(patient=user) | Q(doctor=user)).select_related(
        "doctor", "hospital", "consent"
    )


def _pending_for(patient: User, request_id: uuid.UUID | str) -> AccessRequest:
    found = AccessRequest.objects.select_for_update().filter(pk=request_id, patient=patient).first()
    if found is None:
        raise NotFound("Not found.")
    if found.status != RequestStatus.PENDING:
        raise Conflict(f"this request was already {found.status}", code="already_answered")
    return found


def _granted_terms(
    request: AccessRequest, *, scope: str | None, expires_at: dt.datetime | None, field_prefix: str = ""
) -> tuple[Scope, dt.datetime | None]:
    """The terms to grant: the asked ones unless the patient narrows them; wider is refused (400)."""
    granted = parse_scope(scope or request.scope, field=f"{field_prefix}scope")
    if not is_narrower_or_equal(granted, parse_scope(request.scope)):
        raise BadAccessRequest(
            f"{granted} is not within the requested scope {request.scope}",
            field=f"{field_prefix}scope",
            code="wider_than_requested",
        )
    expiry = expires_at if expires_at is not None else request.expires_at
    if request.expires_at is not None and expiry is not None and expiry > request.expires_at:
        raise BadAccessRequest(
            "expires_at must not be later than the requested expiry",
            field=f"{field_prefix}expires_at",
            code="wider_than_requested",
        )
    return granted, expiry


def prepare_approval(
    *,
    patient: User,
    request_id: uuid.UUID | str,
    scope: str | None = None,
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The EIP-712 Grant a wallet signs to approve (with the chosen, possibly narrower, terms)."""
    with transaction.atomic():
        request = _pending_for(patient, request_id)
        granted, expiry = _granted_terms(request, scope=scope, expires_at=expires_at)
    return consent_services.prepare_grant(
        patient=patient,
        grantee=address_of(request.doctor),
        scope=str(granted),
        purpose=request.purpose,
        expires_at=expiry,
    )


@transaction.atomic
def approve_access_request(
    *,
    patient: User,
    request_id: uuid.UUID | str,
    password: str | None = None,
    typed_data: object = None,
    signature: object = None,
    scope: str | None = None,
    expires_at: dt.datetime | None = None,
) -> AccessRequest:
    """Approve by signing a grant: a wallet's signed Grant (its terms are checked against the request),
    or the patient's password for the managed key. The consent row and its outbox item commit with it."""
    request = _pending_for(patient, request_id)
    if signature is not None:
        grant = verify_signed_grant(typed_data, signature)
        signed_expiry = dt.datetime.fromtimestamp(grant.expires_at, tz=dt.UTC) if grant.expires_at else None
        granted, expiry = _granted_terms(
            request, scope=grant.scope, expires_at=signed_expiry, field_prefix="typed_data.message."
        )
        if signed_expiry is None and request.expires_at is not None:
            raise BadAccessRequest(
                "the signed grant has no expiry but one was requested",
                field="typed_data.message.expiresAt",
                code="wider_than_requested",
            )
        if grant.grantee != request.doctor.eth_address or grant.purpose != request.purpose:
            raise BadAccessRequest(
                "the signed grant names another grantee or purpose", field="typed_data.message"
            )
        consent = consent_services.submit_signed_grant(
            patient=patient, typed_data=typed_data, signature=signature
        )
    elif password:
        granted, expiry = _granted_terms(request, scope=scope, expires_at=expires_at)
        consent = consent_services.grant_with_managed_key(
            patient=patient,
            password=password,
            grantee=address_of(request.doctor),
            scope=str(granted),
            purpose=request.purpose,
            expires_at=expiry,
        )
    else:
        raise BadAccessRequest(
            "send typed_data and signature from your wallet, or your password", field="password"
        )
    request.status, request.decided_at, request.consent = RequestStatus.APPROVED, timezone.now(), consent
    request.granted_scope, request.granted_expires_at = str(granted), expiry
    request.save(update_fields=["status", "decided_at", "consent", "granted_scope", "granted_expires_at"])
    return request


@transaction.atomic
def decline_access_request(*, patient: User, request_id: uuid.UUID | str, note: str = "") -> AccessRequest:
    request = _pending_for(patient, request_id)
    request.status, request.decided_at, request.decline_note = (
        RequestStatus.DECLINED,
        timezone.now(),
        (note or "").strip(),
    )
    request.save(update_fields=["status", "decided_at", "decline_note"])
    return request
