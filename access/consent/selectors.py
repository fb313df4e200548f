"""Reads of consent: the check ("may G use R of P for U, now or as of block N") and what each user may see.

The rule itself lives in access/consent/rule.py (one owner, a single-check and a queryset form);
`is_allowed` is its single check under the name the API, the demo and the benchmark use.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
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


def consents_in_force_held_by(user: User) -> QuerySet[Consent]:
    """Of the consents `user` may see as a holder (a doctor's own, a hospital admin's hospital's): those
    the patient has signed and not taken back: pending on the chain, or active, unexpired and with no
    revocation under way."""
    if user.role not in (Role.DOCTOR, Role.HOSPITAL_ADMIN):
        return Consent.objects.none()
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    not_being_revoked = Q(revoke_requested_at__isnull=True) | ~Q(revoke_failure_reason="")
    in_force = Q(status=ConsentStatus.PENDING) | (
        Q(status=ConsentStatus.ACTIVE) & unexpired & not_being_revoked
    )
    return consents_visible_to(user).filter(in_force)


def patients_consenting_to(user: User, *, query: str | None = None) -> QuerySet[User]:
    """The patients whose consent in force `user` holds (consents_in_force_held_by), by username, each
    with those consents in `consents_in_force`; `query` keeps those whose username contains it or whose
    address starts with it (any case). This is how a holder learns a patient's address: nobody else's."""
    consents = consents_in_force_held_by(user)
    patients = User.objects.filter(role=Role.PATIENT, pk__in=consents.values("patient_id"))
    if query:
        patients = patients.filter(Q(username__icontains=query) | Q(eth_address__istartswith=query))
    in_force = Prefetch(
        "consents_given", queryset=consents.order_by("created_at"), to_attr="consents_in_force"
    )
    return patients.order_by("username").prefetch_related(in_force)
