"""Break-glass: a registered doctor opens a patient's records without consent in an emergency, for
settings.BREAK_GLASS_HOURS, always logged in the patient's access log, then reviewed by the admin of
the doctor's hospital (justified / unjustified; an unjustified verdict ends a still-live one).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from access.audit.decisions import AccessDecision
from access.audit.log import log_decision
from access.identity.selectors import active_doctor, is_active_doctor
from access.identity.users import address_of
from access.models import AccessAction, BreakGlass, ReviewStatus, Role, User
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound
from healthhash.eth_address import checksummed_address, checksummed_or_none

MIN_REASON_CHARS = 10


class BadBreakGlass(DomainError):
    code = "bad_break_glass"


def patient_by_address(address: object, *, field: str = "patient") -> User:
    """The registered patient with this address; malformed is 400 bad_address, unknown (or not a
    patient) is 404."""
    checksummed = checksummed_address(address, field=field)
    patient = User.objects.filter(eth_address=checksummed, role=Role.PATIENT).first()
    if patient is None:
        raise NotFound("no patient with this address", field=field, code="unknown_patient")
    return patient


@transaction.atomic
def start_break_glass(*, doctor: User, patient_address: str, reason: str) -> BreakGlass:
    """Open emergency access now; the access-log entry (action break_glass) commits with it."""
    profile = active_doctor(doctor, to="break the glass")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_CHARS:
        raise BadBreakGlass(
            f"a written reason of at least {MIN_REASON_CHARS} characters is required", field="reason"
        )
    patient = patient_by_address(patient_address)
    now = timezone.now()
    glass = BreakGlass.objects.create(
        doctor=doctor,
        hospital=profile.hospital,
        patient=patient,
        patient_address=address_of(patient),
        reason=reason,
        started_at=now,
        expires_at=now + dt.timedelta(hours=settings.BREAK_GLASS_HOURS),
    )
    log_decision(
        AccessDecision.by_break_glass(glass.id),
        patient_address=patient.eth_address,
        actor=doctor,
        action=AccessAction.BREAK_GLASS,
        reason=reason,
        detail={
            "break_glass": str(glass.id),
            "hospital": profile.hospital.slug,
            "expires_at": glass.expires_at.isoformat(),
        },
    )
    return glass


def live_break_glasses(*, doctor: User) -> QuerySet[BreakGlass]:
    """THE break-glass rule, queryset form: the doctor's break-glasses live now (not ended, not
    expired), and none at all once the doctor is no longer active at an active hospital (a doctor
    deactivated on chain loses emergency access at once, like any other access)."""
    if not is_active_doctor(doctor):
        return BreakGlass.objects.none()
    return BreakGlass.objects.filter(doctor=doctor, ended_at__isnull=True, expires_at__gt=timezone.now())


def live_break_glass(*, doctor: User, patient_address: str) -> BreakGlass | None:
    """The single check: the doctor's live break-glass on this patient (newest), else None."""
    checksummed = checksummed_or_none(patient_address)
    if checksummed is None:
        return None
    return (
        live_break_glasses(doctor=doctor).filter(patient_address=checksummed).order_by("-started_at").first()
    )


def review_queue(*, admin: User, status: str | None = None) -> QuerySet[BreakGlass]:
    """Break-glasses of the hospitals this user administers, pending first, newest first."""
    if admin.role != Role.HOSPITAL_ADMIN:
        raise Forbidden("only hospital admins review break-glass access")
    queryset = BreakGlass.objects.filter(hospital__admin=admin)
    if status:
        queryset = queryset.filter(review_status=status)
    return queryset.select_related("doctor", "hospital", "reviewed_by").order_by("-started_at")


def break_glasses_on(*, patient: User) -> QuerySet[BreakGlass]:
    return BreakGlass.objects.filter(patient=patient).select_related("doctor", "hospital", "reviewed_by")


def break_glasses_by(*, doctor: User) -> QuerySet[BreakGlass]:
    return BreakGlass.objects.filter(doctor=doctor).select_related("doctor", "hospital", "reviewed_by")


@transaction.atomic
def review_break_glass(
    *, admin: User, break_glass_id: uuid.UUID | str, verdict: str, note: str = ""
) -> BreakGlass:
    """The hospital admin's verdict; another hospital's break-glass is 404, a second verdict 409."""
    if verdict not in (ReviewStatus.JUSTIFIED, ReviewStatus.UNJUSTIFIED):
        raise BadBreakGlass("verdict must be justified or unjustified", field="verdict")
    glass = review_queue(admin=admin).select_for_update(of=("self",)).filter(pk=break_glass_id).first()
    if glass is None:
        raise NotFound("Not found.")
    if glass.review_status != ReviewStatus.PENDING:
        raise Conflict(
            f"this break-glass was already reviewed ({glass.review_status})", code="already_reviewed"
        )
    now = timezone.now()
    glass.review_status, glass.reviewed_by, glass.reviewed_at = verdict, admin, now
    glass.review_note = (note or "").strip()
    fields = ["review_status", "reviewed_by", "reviewed_at", "review_note"]
    if verdict == ReviewStatus.UNJUSTIFIED and glass.is_live:
        glass.ended_at = now
        fields.append("ended_at")
    glass.save(update_fields=fields)
    return glass
