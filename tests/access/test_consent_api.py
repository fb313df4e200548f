"""Consent API as a specification: grant, check, revoke, per role, on the real chain and database."""

from __future__ import annotations

import datetime as dt

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from rest_framework.test import APIClient

from access.models import Consent, Doctor
from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from tests.conftest import PASSWORD, Personas, address_of
from tests.ethers_wallet import ethers_sign

pytestmark = pytest.mark.django_db


def grant_with_password(p: Personas, patient, to, **terms):
    body = {
        "grantee": to.eth_address,
        "scope": "chart",
        "purpose": "TREATMENT",
        "password": PASSWORD,
        **terms,
    }
    return p.client_for(patient).post("/api/consents", body, format="json")


def typed_data_for(p: Personas, patient, **terms):
    body = {
        "action": "grant",
        "grantee": p.bob.eth_address,
        "scope": "chart",
        "purpose": "TREATMENT",
        **terms,
    }
    response = p.client_for(patient).post("/api/consents/typed-data", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def sign(payload: dict, key: bytes) -> str:
    return "0x" + Account.sign_message(
        encode_typed_data(full_message=payload), key
    ).signature.hex().removeprefix("0x")


def alice_key(p: Personas) -> bytes:
    from access.identity.keys import unlock_managed_key

    return unlock_managed_key(user=p.alice, password=PASSWORD).key


def check(p: Personas, user, patient, grantee, **query):
    params = {"patient": patient.eth_address, "grantee": grantee.eth_address, "purpose": "TREATMENT", **query}
    return p.client_for(user).get("/api/consents/check", params)


def nothing_written() -> bool:
    return not Consent.objects.exists() and not OutboxItem.objects.exists()


def test_managed_key_grant_is_pending_then_active_once_mined(personas: Personas) -> None:
    p = personas
    response = grant_with_password(p, p.alice, p.bob)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending"
    assert check(p, p.alice, p.alice, p.bob, category="laboratory").json()["allowed"] is False

    drain_outbox()

    consent = p.client_for(p.alice).get(f"/api/consents/{response.json()['id']}").json()
    assert consent["status"] == "active"
    assert consent["grant_tx_hash"].startswith("0x") and consent["granted_block"] > 0
    verdict = check(p, p.bob, p.alice, p.bob, category="laboratory").json()
    assert verdict["allowed"] is True and verdict["consent_id"] == consent["id"]


def test_wallet_signed_grant_from_typed_data_endpoint_is_accepted(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.alice, scope="category:laboratory", purpose="TRAINING")
    assert payload["primaryType"] == "Grant"
    assert payload["domain"]["verifyingContract"] == p.chain.registry.address
    response = p.client_for(p.alice).post(
        "/api/consents", {"typed_data": payload, "signature": sign(payload, alice_key(p))}, format="json"
    )
    assert response.status_code == 202, response.json()
    drain_outbox()
    assert Consent.objects.get().status == "active"
    assert (
        check(p, p.alice, p.alice, p.bob, category="laboratory", purpose="TRAINING").json()["allowed"] is True
    )
    assert (
        check(p, p.alice, p.alice, p.bob, category="laboratory").json()["allowed"] is False
    )  # other purpose


def test_revoked_consent_denies_the_next_check_and_history_still_answers(personas: Personas) -> None:
    p = personas
    consent_id = grant_with_password(p, p.alice, p.bob).json()["id"]
    drain_outbox()
    granted_block = Consent.objects.get().granted_block

    response = p.client_for(p.alice).post(
        f"/api/consents/{consent_id}/revoke", {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["revocation_pending"] is True
    # Fail closed: the patient's signed revocation denies even before it is mined.
    assert check(p, p.bob, p.alice, p.bob).json()["reason"] == "revocation_pending"

    drain_outbox()
    now = check(p, p.bob, p.alice, p.bob).json()
    assert now["allowed"] is False and now["reason"] == "revoked"
    then = check(p, p.bob, p.alice, p.bob, at_block=granted_block).json()
    assert then["allowed"] is True
    assert p.client_for(p.alice).get(f"/api/consents/{consent_id}").json()["status"] == "revoked"


def test_expired_consent_is_denied_with_reason(personas: Personas) -> None:
    p = personas
    soon = (dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    grant_with_password(p, p.alice, p.bob, expires_at=soon)
    drain_outbox()
    consent = Consent.objects.get()
    Consent.objects.filter(pk=consent.pk).update(
        expires_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=1)
    )
    verdict = check(p, p.bob, p.alice, p.bob).json()
    assert (verdict["allowed"], verdict["reason"]) == (False, "expired")
    assert p.client_for(p.alice).get("/api/consents", {"status": "expired"}).json()["count"] == 1


def test_other_users_consents_are_not_found(personas: Personas) -> None:
    p = personas
    consent_id = grant_with_password(p, p.alice, p.bob).json()["id"]
    drain_outbox()
    assert p.client_for(p.dave).get(f"/api/consents/{consent_id}").status_code == 404
    assert p.client_for(p.carol).get(f"/api/consents/{consent_id}").status_code == 404
    revoke = p.client_for(p.dave).post(
        f"/api/consents/{consent_id}/revoke", {"password": PASSWORD}, format="json"
    )
    assert revoke.status_code == 404
    assert p.client_for(p.bob).get(f"/api/consents/{consent_id}").status_code == 200  # the grantee sees it
    assert p.client_for(p.bob).get("/api/consents").json()["count"] == 1
    assert p.client_for(p.carol).get("/api/consents").json()["count"] == 0
    assert p.client_for(p.dave).get("/api/consents").json()["count"] == 0


def test_check_is_for_the_parties_and_admins_only(personas: Personas) -> None:
    p = personas
    assert check(p, p.dave, p.alice, p.bob).status_code == 403
    assert check(p, p.carol, p.alice, p.bob).status_code == 403
    assert check(p, p.other_hadmin, p.alice, p.bob).status_code == 403
    for user in (p.alice, p.bob, p.hadmin, p.cadmin):
        assert check(p, user, p.alice, p.bob).status_code == 200


def test_listing_filters_by_status_grantee_and_purpose(personas: Personas) -> None:
    p = personas
    grant_with_password(p, p.alice, p.bob)
    grant_with_password(p, p.alice, p.carol, purpose="TRAINING")
    drain_outbox()
    mine = p.client_for(p.alice)
    assert mine.get("/api/consents").json()["count"] == 2
    assert mine.get("/api/consents", {"grantee": address_of(p.carol)}).json()["count"] == 1
    assert mine.get("/api/consents", {"purpose": "TRAINING"}).json()["count"] == 1
    assert mine.get("/api/consents", {"status": "revoked"}).json()["count"] == 0
    assert mine.get("/api/consents", {"status": "bogus"}).status_code == 400


# --- bad input: a 4xx that names the problem, and nothing written -------------------------------


def test_malformed_json_is_rejected(personas: Personas) -> None:
    response = personas.client_for(personas.alice).post(
        "/api/consents", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert nothing_written()


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"purpose": "MARKETING"}, "purpose"),
        ({"scope": "category:astrology"}, "scope"),
        ({"scope": "record:not-a-uuid"}, "scope"),
        ({"grantee": "0x1234"}, "grantee"),
        ({"expires_at": "yesterday"}, "expires_at"),
    ],
)
def test_wrong_types_name_the_field(personas: Personas, terms: dict, field: str) -> None:
    response = grant_with_password(personas, personas.alice, personas.bob, **terms)
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert nothing_written()


def test_unknown_grantee_is_rejected(personas: Personas) -> None:
    stranger = Account.create().address
    response = personas.client_for(personas.alice).post(
        "/api/consents",
        {"grantee": stranger, "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "grantee_not_registered"
    assert nothing_written()


def test_unregistered_doctor_is_rejected(personas: Personas) -> None:
    Doctor.objects.filter(user=personas.bob).update(active=False)
    response = grant_with_password(personas, personas.alice, personas.bob)
    assert response.status_code == 400
    assert response.json()["error"] == "grantee_not_registered"
    assert nothing_written()


def test_wrong_password_is_refused(personas: Personas) -> None:
    response = grant_with_password(personas, personas.alice, personas.bob, password="nope")
    assert response.status_code == 403
    assert response.json()["error"] == "bad_password"
    assert nothing_written()


def submit(p: Personas, payload: dict, signature: str):
    return p.client_for(p.alice).post(
        "/api/consents", {"typed_data": payload, "signature": signature}, format="json"
    )


def test_expired_deadline_is_rejected(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.alice)
    payload["message"]["deadline"] = 1_000_000
    response = submit(p, payload, sign(payload, alice_key(p)))
    assert response.status_code == 400 and response.json()["error"] == "deadline_expired"
    assert nothing_written()


def test_signature_by_someone_else_is_rejected(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.alice)
    response = submit(p, payload, sign(payload, Account.create().key))
    assert response.status_code == 400 and response.json()["error"] == "bad_signature"
    assert nothing_written()


def test_replayed_signature_is_rejected(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.alice)
    signature = sign(payload, alice_key(p))
    assert submit(p, payload, signature).status_code == 202
    again = submit(p, payload, signature)
    assert again.status_code == 409 and again.json()["error"] == "replayed"
    drain_outbox()
    again = submit(p, payload, signature)
    assert again.status_code == 409
    assert Consent.objects.count() == 1 and OutboxItem.objects.count() == 1


@pytest.mark.parametrize(
    ("member", "value"), [("chainId", 1), ("verifyingContract", "0x000000000000000000000000000000000000dEaD")]
)
def test_signature_for_another_chain_or_contract_is_rejected(
    personas: Personas, member: str, value: object
) -> None:
    p = personas
    payload = typed_data_for(p, p.alice)
    payload["domain"][member] = value
    response = submit(p, payload, sign(payload, alice_key(p)))
    assert response.status_code == 400 and response.json()["error"] == "wrong_domain"
    assert response.json()["field"] == f"typed_data.domain.{member}"
    assert nothing_written()


def test_patient_cannot_submit_a_grant_for_someone_else(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.dave)
    from access.identity.keys import unlock_managed_key

    dave_key = unlock_managed_key(user=p.dave, password=PASSWORD).key
    response = submit(p, payload, sign(payload, dave_key))  # submitted by alice
    assert response.status_code == 403
    assert nothing_written()


def test_doctor_cannot_grant(personas: Personas) -> None:
    response = grant_with_password(personas, personas.bob, personas.carol)
    assert response.status_code == 403
    assert nothing_written()


def test_second_change_while_first_is_pending_is_a_conflict(personas: Personas) -> None:
    p = personas
    assert grant_with_password(p, p.alice, p.bob).status_code == 202
    again = grant_with_password(p, p.alice, p.bob)
    assert again.status_code == 409 and again.json()["error"] == "change_pending"


def test_unauthenticated_requests_get_the_error_shape(api: APIClient) -> None:
    response = api.get("/api/consents")
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error", "detail", "field"}


# --- several grants at once ---------------------------------------------------------------------


def test_batch_queues_good_grants_and_refuses_bad_ones_in_place(personas: Personas) -> None:
    p = personas
    key = alice_key(p)
    to_bob = typed_data_for(p, p.alice)
    to_carol = typed_data_for(p, p.alice, grantee=p.carol.eth_address, scope="category:laboratory")
    forged = typed_data_for(p, p.alice, scope="category:imaging")
    grants = [
        {"typed_data": to_bob, "signature": sign(to_bob, key)},
        {"typed_data": forged, "signature": sign(forged, Account.create().key)},
        {"typed_data": to_carol, "signature": sign(to_carol, key)},
    ]
    response = p.client_for(p.alice).post("/api/consents/batch", {"grants": grants}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["accepted"], body["refused"]) == (2, 1)
    assert body["results"][1]["error"]["error"] == "bad_signature"
    assert body["results"][0]["consent"]["status"] == "pending"
    drain_outbox()
    assert sorted(Consent.objects.values_list("status", flat=True)) == ["active", "active"]
    assert OutboxItem.objects.count() == 2


def test_batch_refuses_the_same_signed_grant_twice(personas: Personas) -> None:
    p = personas
    payload = typed_data_for(p, p.alice)
    item = {"typed_data": payload, "signature": sign(payload, alice_key(p))}
    body = p.client_for(p.alice).post("/api/consents/batch", {"grants": [item, item]}, format="json").json()
    assert body["accepted"] == 1
    assert body["results"][1]["error"]["error"] == "replayed"


def test_batch_is_for_patients_and_bounded(personas: Personas) -> None:
    p = personas
    assert p.client_for(p.bob).post("/api/consents/batch", {"grants": [{}]}, format="json").status_code == 403
    payload = typed_data_for(p, p.alice)
    many = [{"typed_data": payload, "signature": "0x" + "00" * 65}] * 101
    response = p.client_for(p.alice).post("/api/consents/batch", {"grants": many}, format="json")
    assert response.status_code == 400
    assert nothing_written()


def test_payload_signed_by_ethers_like_a_browser_wallet_is_accepted(personas: Personas) -> None:
    """The typed-data endpoint's output, signed by ethers v6 in node (eth_signTypedData_v4's shape)."""
    p = personas
    payload = typed_data_for(p, p.alice, scope="category:vital-signs")
    signature = "0x" + ethers_sign(alice_key(p), payload).hex()
    response = submit(p, payload, signature)
    assert response.status_code == 202, response.json()
    drain_outbox()
    assert check(p, p.bob, p.alice, p.bob, category="vital-signs").json()["allowed"] is True


# --- faults ---------------------------------------------------------------------------------------


def test_grant_is_queued_while_the_node_is_down_and_mined_once_it_is_back(
    personas: Personas, settings
) -> None:
    from contracts import client, relayer
    from contracts.node import free_port

    p = personas
    live_url = settings.ETH_RPC_URL
    settings.ETH_RPC_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the node is down
    client.reset_caches()

    response = grant_with_password(p, p.alice, p.bob)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending"
    assert relayer.relay_once().unavailable is True
    assert OutboxItem.objects.get().status == "pending"

    settings.ETH_RPC_URL = live_url
    client.reset_caches()
    drain_outbox()
    assert Consent.objects.get().status == "active"
    assert check(p, p.bob, p.alice, p.bob).json()["allowed"] is True
