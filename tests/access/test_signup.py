"""Sign-up: a person becomes a patient by password (with a managed key) or by wallet (Sign-In with
Ethereum), and is signed in at once. Patients have no Directory entry, so nothing is relayed."""

from __future__ import annotations

import pytest
from eth_account import Account
from rest_framework.test import APIClient

from access.identity.keys import unlock_managed_key
from access.models import KeyKind, Role, User
from contracts.models import OutboxItem
from contracts.node import AnvilNode
from tests.access.conftest import SettingsWrapper
from tests.access.test_siwe import fresh_nonce, sign, siwe_text
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = "/api/auth/signup"


@pytest.fixture
def chain_id(anvil: AnvilNode, settings: SettingsWrapper) -> int:
    settings.ETH_RPC_URL = anvil.rpc_url
    return anvil.chain_id


def test_password_sign_up_makes_a_patient_with_a_managed_key_and_a_session(api: APIClient) -> None:
    response = api.post(SIGNUP_URL, {"username": "newbie", "password": PASSWORD, "email": "n@example.org"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["username"], body["role"], body["key_kind"]) == ("newbie", Role.PATIENT, KeyKind.MANAGED)
    user = User.objects.get(username="newbie")
    assert user.eth_address == body["eth_address"] and user.email == "n@example.org"
    assert unlock_managed_key(user=user, password=PASSWORD).address == user.eth_address
    assert api.get("/api/me").json()["username"] == "newbie"  # signed in by the session
    assert not OutboxItem.objects.exists()  # patients have no Directory entry


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "newbie", "password": "123"}, 400, "password"),
        ({"username": "newbie"}, 400, "password"),
        ({"password": PASSWORD}, 400, "username"),
        ({"username": "no spaces allowed", "password": PASSWORD}, 400, "username"),
        ({"username": "0x" + "ab" * 20, "password": PASSWORD}, 400, "username"),
        ({"username": "newbie", "password": PASSWORD, "message": "hello"}, 400, "signature"),
    ],
)
def test_bad_sign_up_is_a_400_naming_the_field(api: APIClient, body: dict, status: int, field: str) -> None:
    response = api.post(SIGNUP_URL, body)
    assert (response.status_code, response.json()["field"]) == (status, field), response.content
    assert not User.objects.filter(username="newbie").exists()


def test_taken_username_is_a_409(api: APIClient) -> None:
    existing = PatientFactory.create()
    response = api.post(SIGNUP_URL, {"username": existing.username, "password": PASSWORD})
    assert (response.status_code, response.json()["error"]) == (409, "username_taken")


def test_sign_up_needs_the_csrf_token_like_login(csrf_api: APIClient) -> None:
    response = csrf_api.post(SIGNUP_URL, {"username": "newbie", "password": PASSWORD}, format="json")
    assert (response.status_code, response.json()["error"]) == (403, "csrf_failed")
    token = csrf_api.get("/api/auth/csrf").json()["csrf_token"]
    response = csrf_api.post(
        SIGNUP_URL, {"username": "newbie", "password": PASSWORD}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201, response.content


def test_wallet_sign_up_makes_a_patient_without_a_managed_key(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    response = api.post(SIGNUP_URL, {"message": text, "signature": sign(wallet, text)}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["eth_address"], body["key_kind"], body["role"]) == (
        wallet.address,
        KeyKind.WALLET,
        "patient",
    )
    user = User.objects.get(eth_address=wallet.address)
    assert not user.has_usable_password()
    assert not hasattr(user, "managed_key")
    assert api.get("/api/me").json()["eth_address"] == wallet.address


def test_wallet_sign_up_of_a_known_address_is_a_409_after_the_signature(
    api: APIClient, chain_id: int
) -> None:
    wallet = Account.create()
    PatientFactory.create(eth_address=wallet.address)
    forged = siwe_text(wallet, fresh_nonce(api), chain_id)
    stranger = Account.create()
    bad = api.post(SIGNUP_URL, {"message": forged, "signature": sign(stranger, forged)}, format="json")
    assert (bad.status_code, bad.json()["error"]) == (401, "siwe_bad_signature")  # nothing learnt

    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    response = api.post(SIGNUP_URL, {"message": text, "signature": sign(wallet, text)}, format="json")
    assert (response.status_code, response.json()["error"]) == (409, "address_taken")
    assert User.objects.filter(eth_address=wallet.address).count() == 1
