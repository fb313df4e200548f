"""Access-log entries for a doctor's record list: a list discloses metadata, so each patient whose
records appear on the page gets one "list" entry naming what allowed it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from access.audit import log as audit
from access.models import BreakGlass, Purpose, User
from ehr.models import Record
from ehr.record_selectors import active_consents


def log_doctor_listing(doctor: User, page: Sequence[Record]) -> None:
    by_patient: dict[str, list[str]] = defaultdict(list)
    for record in page:
        by_patient[record.patient_address].append(str(record.id))
    if not by_patient:
        return
    bases: dict[str, str] = {}
    consents = active_consents(grantee_address=doctor.eth_address, purpose=Purpose.TREATMENT).filter(
        patient_address__in=list(by_patient)
    )
    for consent_id, patient, block in consents.values_list("id", "patient_address", "granted_block"):
        bases.setdefault(patient, f"consent:{consent_id}@{block}")
    glasses = BreakGlass.objects.filter(
        doctor=doctor,
        patient_address__in=list(by_patient),
        ended_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    for glass_id, patient in glasses.values_list("id", "patient_address"):
        bases.setdefault(patient, f"break_glass:{glass_id}")
    events = [
        audit.AccessEvent(
            patient_address=patient,
            actor=doctor,
            actor_address=doctor.eth_address or "",
            action="list",
            purpose="EMERGENCY" if bases.get(patient, "").startswith("break_glass") else "TREATMENT",
            outcome="allowed",
            legal_basis=bases.get(patient, "none"),
            detail={"records": record_ids},
        )
        for patient, record_ids in sorted(by_patient.items())
    ]
    with transaction.atomic():
        audit.record_accesses(events)
