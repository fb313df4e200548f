"""Reads of records: which records a user may see at all. Every list, count, search and export goes
through `records_visible_to`, so a doctor never learns the metadata of a record no consent covers."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from access.audit.breakglass import live_break_glasses
from access.consent import rule as consent_rule
from access.identity.selectors import is_active_doctor
from access.identity.users import address_of
from access.models import Purpose, Role, User
from ehr.models import Record


def _doctor_visibility(user: User) -> Q:
    """Access's two rules in their queryset form: a covering TREATMENT consent, or a live break-glass."""
    consents = consent_rule.covering_consents(grantee_address=address_of(user), purpose=Purpose.TREATMENT)
    glass = live_break_glasses(doctor=user).filter(patient_address=OuterRef("patient_address"))
    return consent_rule.covered_records(consents, records=Record.objects.all()) | Q(Exists(glass))


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
