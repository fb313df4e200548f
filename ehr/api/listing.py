"""Access-log entries for a doctor's record list: a list discloses metadata, so each patient whose
records appear on the page gets one "list" entry naming what allowed it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction

from access.audit import log as audit
from access.audit.breakglass import live_break_glasses
from access.audit.decisions import AccessDecision
from access.consent import rule as consent_rule
from access.identity.users import address_of
from access.models import AccessAction, AccessOutcome, AccessPurpose, LegalBasis, Purpose, User
from ehr.models import Record


def _decisions(doctor: User, patients: list[str]) -> dict[str, AccessDecision]:
    """Per patient, what let the doctor see the page's records, in the record door's order: a covering
    TREATMENT consent first, then a live break-glass (both from access's rules)."""
    bases = consent_rule.legal_bases(
        grantee_address=address_of(doctor), purpose=Purpose.TREATMENT, patient_addresses=patients
    )
    decisions = {
        patient: AccessDecision(True, "consent", AccessPurpose.TREATMENT, basis)
        for patient, basis in bases.items()
    }
    glasses = live_break_glasses(doctor=doctor).filter(patient_address__in=patients).order_by("-started_at")
    for glass_id, patient in glasses.values_list("id", "patient_address"):
        decisions.setdefault(patient, AccessDecision.by_break_glass(glass_id))
    return decisions


def log_doctor_listing(doctor: User, page: Sequence[Record]) -> None:
    by_patient: dict[str, list[str]] = defaultdict(list)
    for record in page:
        by_patient[record.patient_address].append(str(record.id))
    if not by_patient:
        return
    decisions = _decisions(doctor, list(by_patient))
    # A listed record is visible, so a patient without a basis here is a race (revoked meanwhile):
    # still logged, as allowed under TREATMENT with basis "none", as before.
    fallback = AccessDecision(True, "listed", AccessPurpose.TREATMENT, LegalBasis.none())
    events = [
        audit.access_event(
            decisions.get(patient, fallback),
            patient_address=patient,
            actor=doctor,
            action=AccessAction.LIST,
            outcome=AccessOutcome.ALLOWED,
            detail={"records": record_ids},
        )
        for patient, record_ids in sorted(by_patient.items())
    ]
    with transaction.atomic():
        audit.record_accesses(events)
