"""`GET /api/patients`: a doctor (or a hospital admin) finds a patient's address only through a consent in
force that the patient gave them; every other persona learns nothing, on the real chain and database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from access.models import Consent, Doctor, User
from contracts.drain import drain_outbox
from tests.conftest import PASSWORD, Personas, address_of

pytestmark = pytest.mark.django_db


def grant(p: Personas, patient: User, grantee_address: str, purpose: str = "TREATMENT") -> str:
    body = {"grantee": grantee_address, "scope": "chart", "purpose": purpose, "password": PASSWORD}
    response = p.client_for(patient).post("/api/consents", body, format="json")
    assert response.status_code == 202, response.json()
    return str(response.json()["id"])


def patients_of(p: Personas, user: User, **params: str) -> list[dict[str, Any]]:
    response = p.client_for(user).get("/api/patients", params)
    assert response.status_code == 200, response.json()
    return list(response.json()["results"])


def usernames(found: list[dict[str, Any]]) -> list[str]:
    return [patient["username"] for patient in found]


def test_doctor_finds_the_patients_who_granted_him_with_address_and_consents(personas: Personas) -> None:
    p = personas
    consent_id = grant(p, p.alice, address_of(p.bob))

    [alice] = patients_of(p, p.bob)  # dave granted nothing: absent
    assert alice["username"] == "alice" and alice["address"] == address_of(p.alice)
    assert [(c["id"], c["scope"], c["purpose"], c["status"]) for c in alice["consents"]] == [
        (consent_id, "chart", "TREATMENT", "pending")  # signed, not mined yet: she has consented
    ]
    drain_outbox()
    [alice] = patients_of(p, p.bob)
    assert alice["consents"][0]["status"] == "active" and alice["consents"][0]["granted_block"] > 0

    assert patients_of(p, p.carol) == []  # a doctor of another hospital
    assert patients_of(p, p.bob2) == []  # a colleague at bob's own hospital holds no consent of hers
    assert patients_of(p, p.hadmin) == []  # the hospital holds none either: bob's consent is bob's


def test_query_narrows_by_username_or_address_start(personas: Personas) -> None:
    p = personas
    grant(p, p.alice, address_of(p.bob))
    grant(p, p.dave, address_of(p.bob))

    assert usernames(patients_of(p, p.bob)) == ["alice", "dave"]
    assert usernames(patients_of(p, p.bob, query="LIC")) == ["alice"]
    assert usernames(patients_of(p, p.bob, query=address_of(p.dave)[:12].lower())) == ["dave"]
    assert patients_of(p, p.bob, query="nobody") == []
    assert usernames(patients_of(p, p.carol, query="alice")) == []  # no consent: not found by name either

    empty = p.client_for(p.bob).get("/api/patients", {"query": ""})
    assert empty.status_code == 400 and empty.json()["field"] == "query"


def test_a_patient_drops_out_once_her_consent_is_being_revoked_revoked_or_expired(personas: Personas) -> None:
    p = personas
    alice_consent = grant(p, p.alice, address_of(p.bob))
    dave_consent = grant(p, p.dave, address_of(p.bob))
    drain_outbox()
    assert usernames(patients_of(p, p.bob)) == ["alice", "dave"]

    revoked = p.client_for(p.alice).post(
        f"/api/consents/{alice_consent}/revoke", {"password": PASSWORD}, format="json"
    )
    assert revoked.status_code == 202 and revoked.json()["revocation_pending"] is True
    assert usernames(patients_of(p, p.bob)) == ["dave"]  # she has signed the revocation: gone already
    drain_outbox()
    assert usernames(patients_of(p, p.bob)) == ["dave"]

    # Time passing past dave's expiry (the rows say when it ends; nothing else changes at that moment).
    Consent.objects.filter(pk=dave_consent).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert patients_of(p, p.bob) == []


def test_hospital_admin_finds_patients_who_consented_to_the_hospital_only(personas: Personas) -> None:
    p = personas
    grant(p, p.alice, p.general.account_address, purpose="TRAINING")
    grant(p, p.dave, address_of(p.bob))  # to a doctor of the hospital, not to the hospital

    [alice] = patients_of(p, p.hadmin)
    assert alice["username"] == "alice" and alice["consents"][0]["purpose"] == "TRAINING"
    assert patients_of(p, p.other_hadmin) == []
    assert usernames(patients_of(p, p.bob)) == ["dave"]  # the hospital's consent is not its doctors'


@pytest.mark.parametrize("persona", ["alice", "dave", "cadmin"])
def test_patients_and_the_consortium_admin_have_no_patient_list(personas: Personas, persona: str) -> None:
    p = personas
    grant(p, p.alice, address_of(p.bob))
    response = p.client_for(getattr(p, persona)).get("/api/patients")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden" and "GET /api/me" in response.json()["detail"]


def test_deactivated_doctor_and_anonymous_caller_are_refused(personas: Personas) -> None:
    p = personas
    grant(p, p.alice, address_of(p.bob))
    Doctor.objects.filter(user=p.bob).update(active=False)  # as the indexer does on DoctorDeactivated
    response = p.client_for(p.bob).get("/api/patients")
    assert response.status_code == 403 and response.json()["error"] == "not_active_doctor"
    assert APIClient().get("/api/patients").status_code == 401
