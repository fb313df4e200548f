"""Reads of consent: the check ("may G use R of P for U, now or as of block N") and what each user may see.

The rule itself lives in access/consent/rule.py (one owner, a single-check and a queryset form);
`is_allowed` is its single check under the name the API, the demo and the benchmark use.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from access.consent.rule import ConsentDecision, check, forget_block_times  # noqa: F401 - re-exported
from access.models import Consent, ConsentStatus, Role, User

is_allowed = check


def consents_visible_to(user: User) -> QuerySet[Consent]:
    """Patients see the consents they gave; doctors and hospital admins those they (or the hospital) hold."""
    if user.role == Role.PATIENT:
        return Consent.objects.filter(patient=user)
    if user.role == Role.DOCTOR:
        return Consent.objects.filter(grantee_address=user.eth_address)
    if user.role == Role.HOSPITAL_ADMIN and user.hospital_id:
        return Consent.objects.filter(grantee_hospital_id=user.hospital_id, grantee_user__isnull=True)
    return Consent.objects.none()


def filter_consents(
    queryset: QuerySet[Consent], *, status: str | None, grantee: str | None, purpose: int | None
) -> QuerySet[Consent]:
    if status == "expired":
        queryset = queryset.filter(status=ConsentStatus.ACTIVE, expires_at__lte=timezone.now())
    elif status == "active":
        queryset = queryset.filter(status=ConsentStatus.ACTIVE).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
    elif status:
        queryset = queryset.filter(status=status)
    if grantee:
        queryset = queryset.filter(grantee_address__iexact=grantee)
    if purpose is not None:
        queryset = queryset.filter(purpose=purpose)
    return queryset


def may_ask_about(user: User, *, patient_address: str, grantee_address: str) -> bool:
    """Checks are for the parties (patient, grantee, the grantee's hospital admin) and the consortium."""
    if user.role == Role.CONSORTIUM_ADMIN:
        return True
    address = (user.eth_address or "").lower()
    if address in (patient_address.lower(), grantee_address.lower()):
        return True
    hospital = user.hospital if user.role == Role.HOSPITAL_ADMIN else None
    if hospital is not None:
        if hospital.account_address.lower() == grantee_address.lower():
            return True
        return hospital.doctors.filter(user__eth_address__iexact=grantee_address).exists()
    return False
