"""The hospital and doctor directory: what patients pick grantees from, and who sees what."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from rest_framework.test import APIClient

from access.identity import services as identity_services
from access.identity.selectors import user_by_address
from access.models import Hospital, Role, User
from healthhash.errors import Conflict, DomainError
from tests.factories import (
    PASSWORD,
    ConsortiumAdminFactory,
    DoctorFactory,
    HospitalFactory,
    new_address,
)

if TYPE_CHECKING:  # the stubs' name for what the test client returns; no runtime class of that name
    from rest_framework.response import _MonkeyPatchedResponse as TestResponse

pytestmark = pytest.mark.django_db


def as_user(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def results(response: TestResponse) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_patient_sees_active_hospitals_only(patient: User, hospital: Hospital) -> None:
    HospitalFactory.create(slug="not-yet-on-chain", active=False)
    listed = results(as_user(patient).get("/api/hospitals"))
    assert [h["slug"] for h in listed] == [hospital.slug]
    assert listed[0] == {
        "slug": hospital.slug,
        "name": hospital.name,
        "hospital_id": hospital.hospital_id,
        "account_address": hospital.account_address,
        "active": True,
    }


def test_hospital_admin_also_sees_own_pending_hospital(db: None) -> None:
    pending = HospitalFactory.create(active=False)
    HospitalFactory.create(active=False)
    slugs = {h["slug"] for h in results(as_user(pending.admin).get("/api/hospitals"))}
    assert slugs == {pending.slug}


def test_consortium_admin_sees_every_hospital(db: None) -> None:
    HospitalFactory.create(active=False)
    HospitalFactory.create()
    assert len(results(as_user(ConsortiumAdminFactory.create()).get("/api/hospitals"))) == 2


def test_patient_lists_active_doctors_with_their_hospital(patient: User, doctor: User) -> None:
    DoctorFactory.create(hospital=doctor.hospital, active=False)
    DoctorFactory.create(hospital=HospitalFactory.create(active=False))  # active doctor, inactive hospital
    listed = results(as_user(patient).get("/api/doctors"))
    assert len(listed) == 1
    entry = listed[0]
    assert entry["eth_address"] == doctor.eth_address
    assert entry["name"] == doctor.display_name
    assert entry["user_id"] == doctor.id
    assert entry["active"] is True
    hospital = doctor.hospital
    assert hospital is not None
    assert entry["hospital"] == {
        "slug": hospital.slug,
        "name": hospital.name,
        "hospital_id": hospital.hospital_id,
    }


def test_doctors_filter_by_hospital_slug(patient: User, doctor: User) -> None:
    other = DoctorFactory.create()
    api = as_user(patient)
    assert [d["id"] for d in results(api.get("/api/doctors", {"hospital": other.hospital.slug}))] == [
        other.id
    ]
    assert results(api.get("/api/doctors", {"hospital": "no-such-hospital"})) == []
    assert len(results(api.get("/api/doctors"))) == 2


def test_doctor_filter_with_bad_slug_is_400(patient: User) -> None:
    response = as_user(patient).get("/api/doctors", {"hospital": "not a slug!"})
    assert response.status_code == 400
    assert response.json()["field"] == "hospital"


def test_hospital_admin_sees_own_pending_doctors(hospital: Hospital) -> None:
    pending = DoctorFactory.create(hospital=hospital, active=False)
    DoctorFactory.create(active=False)
    ids = {d["id"] for d in results(as_user(hospital.admin).get("/api/doctors"))}
    assert ids == {pending.id}


def test_user_by_address_ignores_case_and_rejects_garbage(patient: User) -> None:
    assert patient.eth_address is not None
    assert user_by_address(patient.eth_address.lower()) == patient
    assert user_by_address("0x1234") is None
    assert user_by_address(new_address()) is None  # a valid address nobody has


def test_register_doctor_with_hospital_makes_an_inactive_doctor(hospital: Hospital) -> None:
    user = identity_services.register_user(
        username="dr-who", password=PASSWORD, role=Role.DOCTOR, hospital=hospital
    )
    assert user.hospital == hospital
    assert user.doctor_profile.hospital == hospital
    assert user.doctor_profile.active is False


def test_register_user_refuses_weak_password_taken_name_and_unknown_role(patient: User) -> None:
    with pytest.raises(DomainError) as weak:
        identity_services.register_user(username="new", password="123", role=Role.PATIENT)
    assert (weak.value.code, weak.value.field) == ("weak_password", "password")
    with pytest.raises(Conflict):
        identity_services.register_user(username=patient.username, password=PASSWORD, role=Role.PATIENT)
    with pytest.raises(DomainError) as role:
        identity_services.register_user(username="new", password=PASSWORD, role="emperor")
    assert role.value.field == "role"
    assert not User.objects.filter(username="new").exists()


def test_add_doctor_twice_is_a_conflict(doctor: User, hospital: Hospital) -> None:
    with pytest.raises(Conflict):
        identity_services.add_doctor(user=doctor, hospital=hospital)
