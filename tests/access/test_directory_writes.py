"""The Directory's doors: the consortium admin registers and deactivates hospitals, a hospital's admin
registers and deactivates that hospital's doctors, each as a signed action relayed through the outbox
(202 while it is mined, then active or inactive once indexed). Every persona is tried on every door.

The chain lives for the whole session, so each test registers hospitals and doctors of its own (fresh
slugs and keys) and deactivates only those, never the personas' own entries.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account import Account
from rest_framework.test import APIClient

from access.identity import services as identity_services
from access.models import Doctor, Hospital, KeyKind, User
from contracts import client
from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from tests.conftest import PASSWORD, Personas, address_of

pytestmark = pytest.mark.django_db

DOCTOR_PASSWORD = "a-long-doctor-passphrase"
ALL_PERSONAS = ("alice", "bob", "carol", "hadmin", "other_hadmin", "cadmin", "anonymous")


def api_as(personas: Personas, name: str) -> APIClient:
    if name == "anonymous":
        return APIClient()
    return personas.client_for(getattr(personas, name))


def fresh_slug() -> str:
    return f"h-{secrets.token_hex(4)}"


def refused_status(name: str) -> int:
    return 401 if name == "anonymous" else 403


def new_hospital(personas: Personas, slug: str | None = None) -> dict[str, Any]:
    body = {
        "password": PASSWORD,
        "slug": slug or fresh_slug(),
        "name": "Hill Hospital",
        "admin_username": f"admin-{secrets.token_hex(3)}",
        "admin_password": "hill-admin-passphrase",
    }
    return body


def registered_hospital(personas: Personas) -> Hospital:
    body = new_hospital(personas)
    response = api_as(personas, "cadmin").post("/api/hospitals", body, format="json")
    assert response.status_code == 202, response.content
    drain_outbox()
    return Hospital.objects.get(slug=body["slug"])


def new_doctor(username: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "password": PASSWORD,
        "username": username or f"dr-{secrets.token_hex(3)}",
        "doctor_password": DOCTOR_PASSWORD,
        **extra,
    }


def registered_doctor(personas: Personas) -> Doctor:
    response = api_as(personas, "hadmin").post("/api/doctors", new_doctor(), format="json")
    assert response.status_code == 202, response.content
    drain_outbox()
    return Doctor.objects.select_related("user", "hospital").get(pk=response.json()["id"])


def on_chain_doctor(address: str) -> tuple[str, bool]:
    hospital_id, active = client.call("Directory", "doctorOf", address)
    return "0x" + bytes(hospital_id).hex(), bool(active)


def on_chain_hospital(hospital_id: str) -> tuple[str, str, bool]:
    account, admin, active = client.call("Directory", "hospital", bytes.fromhex(hospital_id[2:]))
    return account, admin, bool(active)


# --------------------------------------------------------------------------- hospitals


def test_consortium_admin_registers_a_hospital_pending_then_active(personas: Personas) -> None:
    body = new_hospital(personas)
    api = api_as(personas, "cadmin")
    response = api.post("/api/hospitals", body, format="json")

    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["slug"] == body["slug"] and accepted["admin_username"] == body["admin_username"]
    assert accepted["status"] == "pending" and accepted["active"] is False
    assert accepted["action"]["status"] == OutboxItem.Status.PENDING
    assert response["Location"] == f"/api/hospitals/{body['slug']}"
    admin = User.objects.get(username=body["admin_username"])
    assert admin.role == "hospital_admin" and admin.key_kind == KeyKind.MANAGED

    drain_outbox()

    shown = api.get(response["Location"]).json()
    assert shown["status"] == "active" and shown["active"] is True
    assert shown["action"]["status"] == OutboxItem.Status.CONFIRMED
    assert on_chain_hospital(accepted["hospital_id"]) == (
        accepted["account_address"],
        admin.eth_address,
        True,
    )


def test_only_the_consortium_admin_may_register_a_hospital(personas: Personas) -> None:
    for name in ALL_PERSONAS:
        if name == "cadmin":
            continue
        body = new_hospital(personas)
        response = api_as(personas, name).post("/api/hospitals", body, format="json")
        assert response.status_code == refused_status(name), (name, response.content)
        assert not Hospital.objects.filter(slug=body["slug"]).exists(), name
        assert not User.objects.filter(username=body["admin_username"]).exists(), name
    assert not OutboxItem.objects.exists()


def test_hospital_with_an_existing_admin_and_bad_input(personas: Personas) -> None:
    api = api_as(personas, "cadmin")
    taken = api.post("/api/hospitals", {**new_hospital(personas), "slug": "general-hospital"}, format="json")
    assert (taken.status_code, taken.json()["error"], taken.json()["field"]) == (409, "slug_taken", "slug")

    existing_admin = new_hospital(personas)
    del existing_admin["admin_password"]
    runs_one = api.post("/api/hospitals", {**existing_admin, "admin_username": "hadmin"}, format="json")
    assert (runs_one.status_code, runs_one.json()["field"]) == (409, "admin_username")
    not_admin = api.post("/api/hospitals", {**existing_admin, "admin_username": "alice"}, format="json")
    assert (not_admin.status_code, not_admin.json()["field"]) == (400, "admin_username")
    unknown = api.post("/api/hospitals", {**existing_admin, "admin_username": "nobody"}, format="json")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_admin")

    weak = api.post("/api/hospitals", {**new_hospital(personas), "admin_password": "123"}, format="json")
    assert (weak.status_code, weak.json()["error"], weak.json()["field"]) == (
        400,
        "weak_password",
        "admin_password",
    )

    no_password = new_hospital(personas)
    del no_password["password"]
    missing = api.post("/api/hospitals", no_password, format="json")
    assert (missing.status_code, missing.json()["field"]) == (400, "password")

    wrong = api.post("/api/hospitals", {**new_hospital(personas), "password": "not-it"}, format="json")
    assert (wrong.status_code, wrong.json()["error"]) == (403, "bad_password")
    assert Hospital.objects.count() == 2 and not OutboxItem.objects.exists()  # nothing left behind


def test_an_existing_hospital_admin_without_a_hospital_may_be_given_one(personas: Personas) -> None:
    spare = identity_services.register_user(username="spare-admin", password=PASSWORD, role="hospital_admin")
    body = {**new_hospital(personas), "admin_username": "spare-admin"}
    del body["admin_password"]
    response = api_as(personas, "cadmin").post("/api/hospitals", body, format="json")
    assert response.status_code == 202, response.content
    spare.refresh_from_db()
    assert spare.hospital is not None and spare.hospital.slug == body["slug"]


def test_only_the_consortium_admin_may_deactivate_a_hospital(personas: Personas) -> None:
    hospital = registered_hospital(personas)
    url = f"/api/hospitals/{hospital.slug}/deactivate"
    for name in ALL_PERSONAS:
        if name == "cadmin":
            continue
        response = api_as(personas, name).post(url, {"password": PASSWORD}, format="json")
        assert response.status_code == refused_status(name), (name, response.content)
    own_admin = personas.client_for(hospital.admin).post(url, {"password": PASSWORD}, format="json")
    assert own_admin.status_code == 403
    unknown = api_as(personas, "cadmin").post("/api/hospitals/no-such/deactivate", {"password": PASSWORD})
    assert unknown.status_code == 404

    response = api_as(personas, "cadmin").post(url, {"password": PASSWORD}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    again = api_as(personas, "cadmin").post(url, {"password": PASSWORD}, format="json")
    assert (again.status_code, again.json()["error"]) == (409, "directory_action_pending")

    drain_outbox()

    shown = api_as(personas, "cadmin").get(f"/api/hospitals/{hospital.slug}").json()
    assert (shown["status"], shown["active"]) == ("inactive", False)
    assert on_chain_hospital(hospital.hospital_id)[2] is False
    after = api_as(personas, "cadmin").post(url, {"password": PASSWORD}, format="json")
    assert (after.status_code, after.json()["error"]) == (409, "not_active")


# --------------------------------------------------------------------------- doctors


def test_hospital_admin_registers_a_doctor_pending_then_active(personas: Personas) -> None:
    api = api_as(personas, "hadmin")
    response = api.post("/api/doctors", new_doctor(email="dr@example.org"), format="json")

    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["status"] == "pending" and accepted["active"] is False
    assert accepted["hospital"]["slug"] == "general-hospital"
    assert response["Location"] == f"/api/doctors/{accepted['id']}"
    assert api.get(response["Location"]).json()["status"] == "pending"
    doctor_user = User.objects.get(pk=accepted["user_id"])
    assert doctor_user.check_password(DOCTOR_PASSWORD) and doctor_user.key_kind == KeyKind.MANAGED

    drain_outbox()

    shown = api.get(response["Location"]).json()
    assert (shown["status"], shown["active"]) == ("active", True)
    assert on_chain_doctor(address_of(doctor_user)) == (personas.general.hospital_id, True)
    # A patient now finds the new doctor among the grantees.
    listed = api_as(personas, "alice").get("/api/doctors", {"hospital": "general-hospital"}).json()
    assert accepted["id"] in {d["id"] for d in listed["results"]}


def test_a_doctor_with_their_own_wallet_is_registered_under_that_address(personas: Personas) -> None:
    wallet = Account.create()
    body = new_doctor(eth_address=wallet.address.lower())
    del body["doctor_password"]
    response = api_as(personas, "hadmin").post("/api/doctors", body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["eth_address"] == wallet.address  # checksummed
    user = User.objects.get(pk=response.json()["user_id"])
    assert user.key_kind == KeyKind.WALLET and not user.has_usable_password()
    assert not hasattr(user, "managed_key") or user.managed_key is None

    drain_outbox()

    assert on_chain_doctor(wallet.address) == (personas.general.hospital_id, True)


def test_who_may_register_a_doctor_where(personas: Personas) -> None:
    for name in ("alice", "bob", "carol", "cadmin", "anonymous"):
        body = new_doctor()
        response = api_as(personas, name).post("/api/doctors", body, format="json")
        assert response.status_code == refused_status(name), (name, response.content)
        assert not User.objects.filter(username=body["username"]).exists(), name
    # One hospital's admin cannot add doctors to another hospital.
    body = new_doctor(hospital="general-hospital")
    foreign = api_as(personas, "other_hadmin").post("/api/doctors", body, format="json")
    assert foreign.status_code == 403, foreign.content
    assert not User.objects.filter(username=body["username"]).exists()
    assert not OutboxItem.objects.exists()
    # ...but adds to their own.
    own = api_as(personas, "other_hadmin").post("/api/doctors", new_doctor(), format="json")
    assert own.status_code == 202 and own.json()["hospital"]["slug"] == "city-clinic"


def test_doctor_bad_input(personas: Personas) -> None:
    api = api_as(personas, "hadmin")

    def refused(body: dict[str, Any]) -> tuple[int, str, str | None]:
        response = api.post("/api/doctors", body, format="json")
        return response.status_code, response.json()["error"], response.json()["field"]

    assert refused(new_doctor(username="bob")) == (409, "username_taken", "username")
    assert refused(new_doctor(doctor_password="123"))[::2] == (400, "doctor_password")
    assert refused(new_doctor(eth_address="0x1234")) == (400, "bad_address", "eth_address")
    assert refused(new_doctor(eth_address=address_of(personas.carol))) == (
        409,
        "address_taken",
        "eth_address",
    )
    assert refused(new_doctor(username="0x" + "ab" * 20))[::2] == (400, "username")
    assert refused(new_doctor(doctor_password=""))[::2] == (400, "doctor_password")
    assert refused({**new_doctor(), "password": ""})[::2] == (400, "password")
    assert refused({**new_doctor(), "password": "not-it"}) == (403, "bad_password", "password")
    assert not OutboxItem.objects.exists()
    assert Doctor.objects.count() == 3  # bob, bob2, carol


def test_doctor_of_a_hospital_not_yet_on_chain_is_refused(personas: Personas) -> None:
    body = new_hospital(personas)
    api_as(personas, "cadmin").post("/api/hospitals", body, format="json")  # pending, not drained
    admin = User.objects.get(username=body["admin_username"])
    response = personas.client_for(admin).post(
        "/api/doctors", {**new_doctor(), "password": "hill-admin-passphrase"}, format="json"
    )
    assert (response.status_code, response.json()["error"]) == (409, "hospital_not_active")


def test_only_the_doctors_hospital_admin_may_deactivate_them(personas: Personas) -> None:
    doctor = registered_doctor(personas)
    url = f"/api/doctors/{doctor.pk}/deactivate"
    for name in ALL_PERSONAS:
        if name == "hadmin":
            continue
        response = api_as(personas, name).post(url, {"password": PASSWORD}, format="json")
        assert response.status_code == refused_status(name), (name, response.content)
    # Another hospital's admin cannot touch General's persona doctor either (nothing is queued).
    bob = personas.bob.doctor_profile
    foreign = api_as(personas, "other_hadmin").post(
        f"/api/doctors/{bob.pk}/deactivate", {"password": PASSWORD}
    )
    assert foreign.status_code == 403
    assert (
        api_as(personas, "hadmin").post("/api/doctors/999999/deactivate", {"password": PASSWORD}).status_code
        == 404
    )

    response = api_as(personas, "hadmin").post(url, {"password": PASSWORD}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and response.json()["action"]["status"] == "pending"

    drain_outbox()

    shown = api_as(personas, "hadmin").get(f"/api/doctors/{doctor.pk}").json()
    assert (shown["status"], shown["active"]) == ("inactive", False)
    assert on_chain_doctor(address_of(doctor.user)) == (personas.general.hospital_id, False)
    assert not client.call("Directory", "isActiveGrantee", address_of(doctor.user))
    again = api_as(personas, "hadmin").post(url, {"password": PASSWORD}, format="json")
    assert (again.status_code, again.json()["error"]) == (409, "not_active")


def test_pending_doctor_is_seen_by_their_admin_only(personas: Personas) -> None:
    response = api_as(personas, "hadmin").post("/api/doctors", new_doctor(), format="json")
    url = response["Location"]
    assert api_as(personas, "hadmin").get(url).status_code == 200
    assert api_as(personas, "cadmin").get(url).status_code == 200
    for name in ("alice", "bob", "carol", "other_hadmin"):
        assert api_as(personas, name).get(url).status_code == 404, name
    assert api_as(personas, "anonymous").get(url).status_code == 401


def test_a_registration_the_chain_refuses_shows_as_failed(personas: Personas) -> None:
    hospital = registered_hospital(personas)
    admin_api = personas.client_for(hospital.admin)
    # The hospital's deactivation is queued first, so by the time the doctor's registration is mined
    # the hospital is no longer active and the Directory refuses it (HospitalNotActive).
    deactivated = api_as(personas, "cadmin").post(
        f"/api/hospitals/{hospital.slug}/deactivate", {"password": PASSWORD}, format="json"
    )
    assert deactivated.status_code == 202
    body = {**new_doctor(), "password": "hill-admin-passphrase"}
    response = admin_api.post("/api/doctors", body, format="json")
    assert response.status_code == 202, response.content

    drain_outbox()

    shown = admin_api.get(response["Location"]).json()
    assert (shown["status"], shown["active"]) == ("failed", False)
    assert shown["action"]["status"] == OutboxItem.Status.FAILED and shown["action"]["error_code"]
