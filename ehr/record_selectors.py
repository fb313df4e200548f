"""Reads of records: which records a user may see at all. Every list, count, search and export goes
through `records_visible_to`, so a doctor never learns the metadata of a record no consent covers."""

from __future__ import annotations

import uuid

from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from access.consent.scopes import CHART
from access.identity.selectors import is_active_doctor
from access.models import BreakGlass, Consent, Purpose, Role, User
from ehr.models import Record


def active_consents(*, grantee_address: str, purpose: int) -> QuerySet[Consent]:
    """Consents that allow right now, by the same rules as access.consent.selectors.is_allowed."""
    now = timezone.now()
    return (
        Consent.objects.filter(grantee_address=grantee_address, purpose=purpose, granted_block__isnull=False)
        .filter(ended_block__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # A revocation accepted but not yet mined already hides the records (fail closed).
        .filter(Q(revoke_requested_at__isnull=True) | ~Q(revoke_failure_reason=""))
    )


def _doctor_visibility(user: User) -> Q:
    consents = active_consents(grantee_address=user.eth_address, purpose=Purpose.TREATMENT)
    same_patient = consents.filter(patient_address=OuterRef("patient_address"))
    chart = Exists(same_patient.filter(scope=CHART))
    category = Exists(same_patient.filter(scope=Concat(Value("category:"), OuterRef("category"))))
    # Record scopes are few per doctor: matched as a plain IN list of ids.
    record_ids = []
    for scope in consents.filter(scope__startswith="record:").values_list("scope", flat=True):
        try:
            record_ids.append(uuid.UUID(scope.removeprefix("record:")))
        except ValueError:
            continue
    glass = BreakGlass.objects.filter(
        doctor=user,
        patient_address=OuterRef("patient_address"),
        ended_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    return Q(chart) | Q(category) | Q(pk__in=record_ids) | Q(Exists(glass))


def records_visible_to(user: User) -> QuerySet[Record]:
    """Patients: their own records. Doctors: the records an active TREATMENT consent covers (record,
    category or whole chart) plus the charts of patients they hold a live break-glass on, while they are
    active at an active hospital (per the chain's Directory). Anyone else:
    nothing (hospital admins and the consortium see consents and logs, not records)."""
    if user.role == Role.PATIENT:
        return Record.objects.filter(patient=user)
    if user.role == Role.DOCTOR and user.eth_address and is_active_doctor(user):
        return Record.objects.filter(_doctor_visibility(user))
    return Record.objects.none()


def filter_records(
    queryset: QuerySet[Record], *, patient_address: str | None = None, category: str | None = None
) -> QuerySet[Record]:
    """`patient_address` must be checksummed (the API normalises it)."""
    if patient_address:
        queryset = queryset.filter(patient_address=patient_address)
    if category:
        queryset = queryset.filter(category=category)
    return queryset
