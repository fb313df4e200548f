"""Access requests: a doctor asks, the patient approves by signing a grant (the same or narrower terms,
never wider) or declines; only the two parties can see a request."""

from __future__ import annotations

import datetime as dt
from functools import partial

import pytest
from django.utils import timezone

from access.consent import services as consent_services
from access.consent.selectors import is_allowed
from access.identity.keys import unlock_managed_key
from access.identity.users import address_of
from access.models import AccessRequest, ConsentStatus, Doctor, Purpose
from contracts.drain import drain_outbox
from tests.conftest import PASSWORD, Personas


def _ask(personas: Personas, *, scope: str = "chart", expires_at: dt.datetime | None = None, doctor=None):
    body = {
        "patient": personas.alice.eth_address,
        "scope": scope,
        "purpose": "TREATMENT",
        "reason": "follow-up of your biopsy",
    }
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    return personas.client_for(doctor or personas.bob).post("/api/access-requests", body)


def _sign(personas: Personas, payload: dict) -> str:
    """alice's wallet: eth_signTypedData_v4 over the payload (her key, as a browser wallet would hold it)."""
    account = unlock_managed_key(user=personas.alice, password=PASSWORD)
    return "0x" + account.sign_typed_data(full_message=payload).signature.hex().removeprefix("0x")


def test_doctor_asks_and_patient_sees_the_pending_request(personas: Personas) -> None:
    response = _ask(personas)
    assert response.status_code == 201, response.content
    request_id = response.json()["id"]
    assert response.json()["status"] == "pending" and response.json()["hospital"] == "general-hospital"
    mine = personas.client_for(personas.alice).get("/api/access-requests").json()["results"]
    assert [row["id"] for row in mine] == [request_id]
    assert (
        mine[0]["doctor"]["address"] == personas.bob.eth_address
        and mine[0]["reason"] == "follow-up of your biopsy"
    )
    assert [
        row["id"] for row in personas.client_for(personas.bob).get("/api/access-requests").json()["results"]
    ] == [request_id]


@pytest.mark.parametrize("who", ["dave", "carol", "bob2", "hadmin"])
def test_other_users_get_404(personas: Personas, who: str) -> None:
    request_id = _ask(personas).json()["id"]
    api = personas.client_for(getattr(personas, who))
    assert api.get(f"/api/access-requests/{request_id}").status_code == 404
    assert api.post(f"/api/access-requests/{request_id}/decline", {}).status_code == 404
    assert api.post(f"/api/access-requests/{request_id}/approve", {"password": PASSWORD}).status_code == 404
    assert api.get("/api/access-requests").json()["results"] == []


def test_patient_approves_a_narrower_scope_and_shorter_expiry_with_managed_key(personas: Personas) -> None:
    asked_until = timezone.now() + dt.timedelta(days=30)
    request_id = _ask(personas, expires_at=asked_until).json()["id"]
    until = timezone.now() + dt.timedelta(days=7)
    response = personas.client_for(personas.alice).post(
        f"/api/access-requests/{request_id}/approve",
        {"password": PASSWORD, "scope": "category:laboratory", "expires_at": until.isoformat()},
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["granted_scope"]) == ("approved", "category:laboratory")
    assert body["consent"]["scope"] == "category:laboratory" and body["consent"]["status"] == "pending"
    drain_outbox()
    request = AccessRequest.objects.select_related("consent").get(pk=request_id)
    assert request.consent is not None and request.consent.expires_at is not None
    assert request.consent.status == ConsentStatus.ACTIVE
    assert abs(request.consent.expires_at - until) < dt.timedelta(seconds=1)
    check = partial(
        is_allowed,
        patient_address=address_of(personas.alice),
        grantee_address=address_of(personas.bob),
        purpose=Purpose.TREATMENT,
    )
    assert check(category="laboratory").allowed
    assert not check(category="imaging").allowed


def test_wider_scope_or_later_expiry_is_refused(personas: Personas) -> None:
    until = timezone.now() + dt.timedelta(days=3)
    request_id = _ask(personas, scope="category:laboratory", expires_at=until).json()["id"]
    api = personas.client_for(personas.alice)
    wider = api.post(f"/api/access-requests/{request_id}/approve", {"password": PASSWORD, "scope": "chart"})
    assert (
        wider.status_code == 400
        and wider.json()["error"] == "wider_than_requested"
        and wider.json()["field"] == "scope"
    )
    other = api.post(
        f"/api/access-requests/{request_id}/approve", {"password": PASSWORD, "scope": "category:imaging"}
    )
    assert other.status_code == 400
    later = api.post(
        f"/api/access-requests/{request_id}/approve",
        {"password": PASSWORD, "expires_at": (until + dt.timedelta(days=1)).isoformat()},
    )
    assert later.status_code == 400 and later.json()["field"] == "expires_at"
    assert AccessRequest.objects.get(pk=request_id).status == "pending"


def test_patient_approves_with_a_wallet_signature(personas: Personas) -> None:
    request_id = _ask(personas).json()["id"]
    api = personas.client_for(personas.alice)
    payload = api.post(
        f"/api/access-requests/{request_id}/typed-data", {"scope": "category:medication"}
    ).json()
    assert payload["message"]["scope"] == "category:medication"
    response = api.post(
        f"/api/access-requests/{request_id}/approve",
        {"typed_data": payload, "signature": _sign(personas, payload)},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["granted_scope"] == "category:medication"


def test_wallet_signature_over_wider_terms_is_refused(personas: Personas) -> None:
    request_id = _ask(personas, scope="category:laboratory").json()["id"]
    payload = consent_services.prepare_grant(
        patient=personas.alice,
        grantee=address_of(personas.bob),
        scope="chart",
        purpose="TREATMENT",
        expires_at=None,
    )
    response = personas.client_for(personas.alice).post(
        f"/api/access-requests/{request_id}/approve",
        {"typed_data": payload, "signature": _sign(personas, payload)},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "wider_than_requested"
    assert not AccessRequest.objects.get(pk=request_id).consent_id


def test_patient_declines_and_cannot_answer_twice(personas: Personas) -> None:
    request_id = _ask(personas).json()["id"]
    api = personas.client_for(personas.alice)
    response = api.post(f"/api/access-requests/{request_id}/decline", {"note": "ask my GP"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decline_note"]) == ("declined", "ask my GP")
    assert api.post(f"/api/access-requests/{request_id}/approve", {"password": PASSWORD}).status_code == 409
    seen = personas.client_for(personas.bob).get(f"/api/access-requests/{request_id}").json()
    assert seen["status"] == "declined" and seen["consent"] is None


def test_inactive_doctor_and_non_doctors_cannot_ask(personas: Personas) -> None:
    assert _ask(personas, doctor=personas.dave).status_code == 403
    Doctor.objects.filter(user=personas.bob).update(active=False)
    assert _ask(personas).status_code == 403


def test_asking_twice_for_the_same_access_is_409(personas: Personas) -> None:
    assert _ask(personas).status_code == 201
    again = _ask(personas)
    assert again.status_code == 409 and again.json()["error"] == "request_pending"


def test_bad_terms_are_400_with_the_field(personas: Personas) -> None:
    response = _ask(personas, scope="category:gossip")
    assert response.status_code == 400 and response.json()["field"] == "scope"
    past = _ask(personas, expires_at=timezone.now() - dt.timedelta(hours=1))
    assert past.status_code == 400 and past.json()["field"] == "expires_at"
