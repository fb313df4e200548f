"""Sign-In with Ethereum: real EIP-4361 messages signed with eth_account as a wallet would (EIP-191)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from siwe import ISO8601Datetime, SiweMessage

from access.models import KeyKind, Role, SiweNonce, User
from contracts.node import AnvilNode
from tests.access.conftest import SettingsWrapper

pytestmark = pytest.mark.django_db

NONCE_URL = "/api/auth/siwe/nonce"
VERIFY_URL = "/api/auth/siwe/verify"


@pytest.fixture
def chain_id(anvil: AnvilNode, settings: SettingsWrapper) -> int:
    """The SIWE views ask contracts.client for the chain id: point it at the session anvil."""
    settings.ETH_RPC_URL = anvil.rpc_url
    return anvil.chain_id


def _iso(moment: datetime) -> ISO8601Datetime:
    return ISO8601Datetime.from_datetime(moment)


def siwe_text(account: LocalAccount, nonce: str, chain_id: int, **overrides: object) -> str:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "domain": settings.SIWE_DOMAIN,
        "address": account.address,
        "statement": "Sign in to HealthHash.",
        "uri": f"http://{settings.SIWE_DOMAIN}/",
        "version": "1",
        "chain_id": chain_id,
        "nonce": nonce,
        "issued_at": _iso(now),
        "expiration_time": _iso(now + timedelta(minutes=5)),
    }
    fields.update(overrides)
    return SiweMessage(**fields).prepare_message()


def sign(account: LocalAccount, text: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def fresh_nonce(api: APIClient) -> str:
    response = api.get(NONCE_URL)
    assert response.status_code == 200, response.content
    return response.json()["nonce"]


def verify(api: APIClient, text: str, signature: str):
    return api.post(VERIFY_URL, {"message": text, "signature": signature}, format="json")


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail", "field"}
    assert body["error"] == code
    assert body["detail"]


def test_nonce_endpoint_tells_the_wallet_what_to_sign(api: APIClient, chain_id: int) -> None:
    body = api.get(NONCE_URL).json()
    assert body["domain"] == settings.SIWE_DOMAIN
    assert body["chain_id"] == chain_id
    assert len(body["nonce"]) >= 16 and body["nonce"].isalnum()
    assert SiweNonce.objects.filter(nonce=body["nonce"], used_at__isnull=True).exists()
    assert body["uri"].startswith("http")
    assert body["expires_at"] > body["issued_at"]


def test_unknown_wallet_signs_up_as_patient_and_gets_a_session(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    response = verify(api, text, sign(wallet, text))
    assert response.status_code == 200, response.content
    me = response.json()
    assert me["eth_address"] == wallet.address
    assert me["role"] == Role.PATIENT and me["key_kind"] == KeyKind.WALLET
    user = User.objects.get(eth_address=wallet.address)
    assert not user.has_usable_password()
    assert api.get("/api/me").json()["id"] == user.id


def test_known_wallet_logs_into_its_existing_account(api: APIClient, patient: User, chain_id: int) -> None:
    wallet = Account.create()
    patient.eth_address = wallet.address
    patient.save()
    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    response = verify(api, text, sign(wallet, text))
    assert response.status_code == 200
    assert response.json()["id"] == patient.id
    assert User.objects.count() == 1


def test_message_for_another_domain_is_refused(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id, domain="evil.example")
    response = verify(api, text, sign(wallet, text))
    assert_error(response, 401, "siwe_domain")
    assert "evil.example" in response.json()["detail"]


def test_message_for_another_chain_is_refused(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id + 1)
    assert_error(verify(api, text, sign(wallet, text)), 401, "siwe_chain_id")


def test_replayed_message_is_refused_even_from_a_new_client(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    signature = sign(wallet, text)
    assert verify(api, text, signature).status_code == 200
    assert_error(verify(APIClient(), text, signature), 401, "nonce_used")


def test_nonce_not_issued_by_us_is_refused(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, "madeUpNonce12345", chain_id)
    assert_error(verify(api, text, sign(wallet, text)), 401, "nonce_unknown")


def test_expired_message_is_refused(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    past = datetime.now(UTC) - timedelta(minutes=10)
    text = siwe_text(
        wallet,
        fresh_nonce(api),
        chain_id,
        issued_at=_iso(past),
        expiration_time=_iso(past + timedelta(minutes=1)),
    )
    assert_error(verify(api, text, sign(wallet, text)), 401, "siwe_expired")


def test_nonce_older_than_its_ttl_is_refused(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    nonce = fresh_nonce(api)
    SiweNonce.objects.filter(nonce=nonce).update(
        created_at=datetime.now(UTC) - timedelta(seconds=settings.SIWE_NONCE_TTL_S + 1)
    )
    text = siwe_text(wallet, nonce, chain_id)
    assert_error(verify(api, text, sign(wallet, text)), 401, "nonce_expired")


def test_signature_by_another_key_is_refused_and_does_not_burn_the_nonce(
    api: APIClient, chain_id: int
) -> None:
    wallet, impostor = Account.create(), Account.create()
    nonce = fresh_nonce(api)
    text = siwe_text(wallet, nonce, chain_id)
    response = verify(api, text, sign(impostor, text))
    assert_error(response, 401, "siwe_bad_signature")
    assert wallet.address in response.json()["detail"]
    assert not User.objects.exists()
    assert verify(api, text, sign(wallet, text)).status_code == 200


@pytest.mark.parametrize(
    "text",
    ["hello", "", "example.com wants you to sign in with your Ethereum account:\n0xnotanaddress\n"],
)
def test_malformed_message_is_a_400_naming_the_field(api: APIClient, chain_id: int, text: str) -> None:
    response = verify(api, text, "0x" + "11" * 65)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "message"
    if text:  # an empty body is refused by the serializer ("blank") before parsing
        assert_error(response, 400, "siwe_malformed")
        assert "EIP-4361" in response.json()["detail"]


def test_malformed_signature_is_a_400(api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(api), chain_id)
    response = verify(api, text, "0x1234")
    assert_error(response, 400, "siwe_malformed")
    assert response.json()["field"] == "signature"


def test_verify_requires_the_csrf_token(csrf_api: APIClient, chain_id: int) -> None:
    wallet = Account.create()
    text = siwe_text(wallet, fresh_nonce(csrf_api), chain_id)
    assert_error(verify(csrf_api, text, sign(wallet, text)), 403, "csrf_failed")
    token = csrf_api.get("/api/auth/csrf").json()["csrf_token"]
    response = csrf_api.post(
        VERIFY_URL, {"message": text, "signature": sign(wallet, text)}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200, response.content
