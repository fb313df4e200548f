"""Password re-confirmation on the signing paths (consent grant and revoke, access-request approval):
a caller with a stolen session or token cannot guess the owner's password there. Issue 13 sent 40 wrong
passwords in 8 s and then the right one worked; now the key locks after a few and stays locked."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from access.models import AccessRequest, Consent
from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from tests.conftest import PASSWORD, Personas

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lock_after_five(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 5
    settings.PASSWORD_CONFIRM_RATE = "100/minute"  # the lock, not the rate, is under test here


def grant_body(p: Personas, password: str) -> dict:
    return {"grantee": p.bob.eth_address, "scope": "chart", "purpose": "TREATMENT", "password": password}


def test_forty_wrong_passwords_on_grant_lock_the_key_and_the_right_one_then_fails(personas: Personas) -> None:
    p = personas
    thief = p.client_for(p.alice)
    codes = [
        thief.post("/api/consents", grant_body(p, f"guess-{i}"), format="json").status_code for i in range(40)
    ]
    assert codes == [403] * 4 + [423] * 36
    right = thief.post("/api/consents", grant_body(p, PASSWORD), format="json")
    assert right.status_code == 423, right.content
    assert right.json()["error"] == "key_locked" and right.json()["field"] == "password"
    assert not Consent.objects.exists() and not OutboxItem.objects.exists()
    # another patient is not affected
    assert (
        p.client_for(p.dave).post("/api/consents", grant_body(p, PASSWORD), format="json").status_code == 202
    )


def test_a_password_sign_in_lifts_the_lock(personas: Personas, api: APIClient) -> None:
    p = personas
    for _ in range(5):
        p.client_for(p.alice).post("/api/consents", grant_body(p, "guess"), format="json")
    login = api.post("/api/auth/login", {"username": "alice", "password": PASSWORD}, format="json")
    assert login.status_code == 200, login.content
    assert (
        p.client_for(p.alice).post("/api/consents", grant_body(p, PASSWORD), format="json").status_code == 202
    )


def test_revoke_with_wrong_passwords_locks_too(personas: Personas) -> None:
    p = personas
    api = p.client_for(p.alice)
    consent_id = api.post("/api/consents", grant_body(p, PASSWORD), format="json").json()["id"]
    drain_outbox()
    codes = [
        api.post(f"/api/consents/{consent_id}/revoke", {"password": "guess"}, format="json").status_code
        for _ in range(6)
    ]
    assert codes == [403] * 4 + [423] * 2
    locked = api.post(f"/api/consents/{consent_id}/revoke", {"password": PASSWORD}, format="json")
    assert locked.status_code == 423
    assert Consent.objects.get(pk=consent_id).status == "active"


def test_approving_an_access_request_with_wrong_passwords_locks_too(personas: Personas) -> None:
    p = personas
    asked = p.client_for(p.bob).post(
        "/api/access-requests",
        {"patient": p.alice.eth_address, "scope": "chart", "purpose": "TREATMENT", "reason": "follow-up"},
    )
    request_id = asked.json()["id"]
    alice = p.client_for(p.alice)
    codes = [
        alice.post(f"/api/access-requests/{request_id}/approve", {"password": "guess"}).status_code
        for _ in range(6)
    ]
    assert codes == [403] * 4 + [423] * 2
    assert alice.post(f"/api/access-requests/{request_id}/approve", {"password": PASSWORD}).status_code == 423
    assert AccessRequest.objects.get(pk=request_id).status == "pending"


def test_too_many_confirmations_a_minute_are_throttled(personas: Personas, settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_RATE = "2/minute"
    p = personas
    api = p.client_for(p.alice)
    codes = [api.post("/api/consents", grant_body(p, "guess"), format="json").status_code for _ in range(3)]
    assert codes == [403, 403, 429]
    assert api.post("/api/consents", grant_body(p, "guess"), format="json").json()["error"] == "throttled"
