"""Reads on identities: the hospital and doctor directory as each role may see it, users by address."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from access.models import Doctor, Hospital, Role, User
from healthhash.errors import Forbidden
from healthhash.eth_address import checksummed_or_none


def hospitals_visible_to(user: User) -> QuerySet[Hospital]:
    """Active hospitals; a consortium admin sees all, a hospital admin also sees their own."""
    hospitals = Hospital.objects.all()
    if user.role == Role.CONSORTIUM_ADMIN:
        return hospitals
    visible = Q(active=True)
    if user.role == Role.HOSPITAL_ADMIN and user.hospital_id is not None:
        visible |= Q(pk=user.hospital_id)
    return hospitals.filter(visible)


def doctors_visible_to(user: User, *, hospital_slug: str | None = None) -> QuerySet[Doctor]:
    """Active doctors of active hospitals (the possible grantees).

    A consortium admin sees every doctor; a hospital admin also sees their own hospital's doctors
    whose registration has not reached the chain yet.
    """
    doctors = Doctor.objects.select_related("user", "hospital").order_by("hospital__name", "user__username")
    if hospital_slug:
        doctors = doctors.filter(hospital__slug=hospital_slug)
    if user.role == Role.CONSORTIUM_ADMIN:
        return doctors
    visible = Q(active=True, hospital__active=True)
    if user.role == Role.HOSPITAL_ADMIN and user.hospital_id is not None:
        visible |= Q(hospital_id=user.hospital_id)
    return doctors.filter(visible)


def user_by_address(address: str) -> User | None:
    """The user whose eth_address is `address` (any case), or None; a malformed address is None."""
    checksummed = checksummed_or_none(address)
    if checksummed is None:
        return None
    return User.objects.filter(eth_address=checksummed).select_related("hospital").first()


def is_active_doctor(user: User) -> bool:
    """A doctor active at an active hospital, as the chain's Directory says (indexed)."""
    return (
        user.role == Role.DOCTOR
        and Doctor.objects.filter(user=user, active=True, hospital__active=True).exists()
    )


def active_doctor(user: User, *, to: str) -> Doctor:
    """`user`'s doctor row, if they are a doctor active at an active hospital; else 403 saying they
    may not do `to` (e.g. "break the glass")."""
    doctor = (
        Doctor.objects.select_related("hospital").filter(user=user).first()
        if user.role == Role.DOCTOR
        else None
    )
    if doctor is None or not doctor.active or not doctor.hospital.active:
        raise Forbidden(f"only a doctor active at a registered hospital may {to}", code="not_active_doctor")
    return doctor
