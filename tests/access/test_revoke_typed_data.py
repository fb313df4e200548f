"""The Revoke a wallet signs: POST /api/consents/{id}/revoke/typed-data gives the patient's wallet the exact
EIP-712 payload, which comes back signed to /revoke; everyone else, and a consent that cannot be revoked,
is refused as /revoke refuses them. On the real chain and database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient

from access.models import Consent, User
from contracts.drain import drain_outbox
from tests.conftest import PASSWORD, Personas, address_of
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@dataclass
class WalletPatient:
    user: User
    account: LocalAccount


def sign(payload: dict[str, Any], account: LocalAccount) -> str:
    return "0x" + bytes(Account.sign_typed_data(account.key, full_message=payload).signature).hex()


def typed_data_path(consent_id: str) -> str:
    return f"/api/consents/{consent_id}/revoke/typed-data"


@pytest.fixture
def wallet_patient(personas: Personas) -> WalletPatient:
    account = Account.create()
    return WalletPatient(PatientFactory.create(eth_address=account.address), account)


@pytest.fixture
def active_consent_id(personas: Personas, wallet_patient: WalletPatient) -> str:
    """A whole-chart TREATMENT consent from the wallet patient to bob, granted by signature and mined."""
    client = personas.client_for(wallet_patient.user)
    terms = {"action": "grant", "grantee": address_of(personas.bob), "scope": "chart", "purpose": "TREATMENT"}
    payload = client.post("/api/consents/typed-data", terms, format="json").json()
    body = {"typed_data": payload, "signature": sign(payload, wallet_patient.account)}
    granted = client.post("/api/consents", body, format="json")
    assert granted.status_code == 202, granted.json()
    drain_outbox()
    assert Consent.objects.get(pk=granted.json()["id"]).status == "active"
    return str(granted.json()["id"])


def test_patient_signs_the_prepared_revoke_and_it_is_accepted_then_mined(
    personas: Personas, wallet_patient: WalletPatient, active_consent_id: str
) -> None:
    client = personas.client_for(wallet_patient.user)
    response = client.post(typed_data_path(active_consent_id))
    assert response.status_code == 200, response.json()
    payload = response.json()
    assert set(payload) == {"domain", "types", "primaryType", "message"}
    assert payload["primaryType"] == "Revoke"
    assert payload["domain"]["verifyingContract"] == personas.chain.registry.address
    consent = Consent.objects.get(pk=active_consent_id)
    message = payload["message"]
    assert message["patient"] == wallet_patient.account.address
    assert message["grantee"] == address_of(personas.bob)
    assert (message["scope"], message["purpose"]) == ("chart", consent.purpose)

    body = {"typed_data": payload, "signature": sign(payload, wallet_patient.account)}
    revoked = client.post(f"/api/consents/{active_consent_id}/revoke", body, format="json")
    assert revoked.status_code == 202, revoked.json()
    assert revoked.json()["revocation_pending"] is True

    drain_outbox()
    assert client.get(f"/api/consents/{active_consent_id}").json()["status"] == "revoked"


def test_a_managed_key_patient_gets_the_revoke_their_password_would_sign(personas: Personas) -> None:
    p = personas
    body = {"grantee": address_of(p.bob), "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD}
    consent_id = p.client_for(p.alice).post("/api/consents", body, format="json").json()["id"]
    drain_outbox()
    payload = p.client_for(p.alice).post(typed_data_path(consent_id)).json()
    assert payload["primaryType"] == "Revoke" and payload["message"]["patient"] == address_of(p.alice)


@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("carol", 404), ("dave", 404)])
def test_the_grantee_and_other_users_are_refused_as_revoke_refuses_them(
    personas: Personas, active_consent_id: str, who: str, status: int
) -> None:
    user = getattr(personas, who)
    payload_answer = personas.client_for(user).post(typed_data_path(active_consent_id))
    revoke_answer = personas.client_for(user).post(
        f"/api/consents/{active_consent_id}/revoke", {"password": PASSWORD}, format="json"
    )
    assert payload_answer.status_code == revoke_answer.status_code == status
    assert set(payload_answer.json()) == {"error", "detail", "field"}
    assert payload_answer.json()["error"] == revoke_answer.json()["error"]


def test_another_patients_consent_is_not_found(personas: Personas, active_consent_id: str) -> None:
    stranger = PatientFactory.create()
    response = personas.client_for(stranger).post(typed_data_path(active_consent_id))
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_anonymous_is_refused_in_the_error_shape(active_consent_id: str) -> None:
    response = APIClient().post(typed_data_path(active_consent_id))
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error", "detail", "field"}


def test_a_consent_already_being_revoked_is_a_conflict(
    personas: Personas, wallet_patient: WalletPatient, active_consent_id: str
) -> None:
    client = personas.client_for(wallet_patient.user)
    payload = client.post(typed_data_path(active_consent_id)).json()
    body = {"typed_data": payload, "signature": sign(payload, wallet_patient.account)}
    assert client.post(f"/api/consents/{active_consent_id}/revoke", body, format="json").status_code == 202

    again = client.post(typed_data_path(active_consent_id))
    assert again.status_code == 409
    assert again.json()["error"] == "change_pending" and set(again.json()) == {"error", "detail", "field"}
    resubmitted = client.post(f"/api/consents/{active_consent_id}/revoke", body, format="json")
    assert resubmitted.status_code == 409 and resubmitted.json()["error"] == again.json()["error"]


def test_a_revoked_consent_cannot_be_revoked_again(
    personas: Personas, wallet_patient: WalletPatient, active_consent_id: str
) -> None:
    client = personas.client_for(wallet_patient.user)
    payload = client.post(typed_data_path(active_consent_id)).json()
    body = {"typed_data": payload, "signature": sign(payload, wallet_patient.account)}
    client.post(f"/api/consents/{active_consent_id}/revoke", body, format="json")
    drain_outbox()

    again = client.post(typed_data_path(active_consent_id))
    assert again.status_code == 409 and again.json()["error"] == "not_active"


def test_a_consent_not_yet_mined_cannot_be_revoked(personas: Personas) -> None:
    p = personas
    body = {"grantee": address_of(p.bob), "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD}
    consent_id = p.client_for(p.alice).post("/api/consents", body, format="json").json()["id"]
    response = p.client_for(p.alice).post(typed_data_path(consent_id))
    assert response.status_code == 409 and response.json()["error"] == "not_active"


def test_the_grant_payload_door_points_a_revoke_to_the_consents_own(
    personas: Personas, active_consent_id: str
) -> None:
    """One door per payload: the older `{action: revoke}` form of POST /api/consents/typed-data is gone."""
    body = {"action": "revoke", "consent": active_consent_id}
    response = personas.client_for(personas.alice).post("/api/consents/typed-data", body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "action"
    assert "/revoke/typed-data" in response.json()["detail"]
    grant = {"grantee": address_of(personas.bob), "scope": "chart", "purpose": "TREATMENT"}  # action optional
    prepared = personas.client_for(personas.alice).post("/api/consents/typed-data", grant, format="json")
    assert prepared.status_code == 200 and prepared.json()["primaryType"] == "Grant"
