"""Password login, logout, CSRF for a single-page app, API tokens (expiring, minted with the password or
a fresh sign-in, revoked by logging out with them) and /api/me."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from access.identity import services as identity_services
from access.models import ApiToken, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail", "field"}
    if code is not None:
        assert body["error"] == code
    return body


def token_client(plaintext: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {plaintext}")
    return api


def csrf_token(api: APIClient) -> str:
    response = api.get("/api/auth/csrf")
    assert response.status_code == 200
    assert response.cookies["csrftoken"].value
    return response.json()["csrf_token"]


# --- login / logout / CSRF --------------------------------------------------------------------


def test_spa_fetches_csrf_then_logs_in_and_sees_me(csrf_api: APIClient, patient: User) -> None:
    token = csrf_token(csrf_api)
    response = csrf_api.post(
        "/api/auth/login",
        {"username": patient.username, "password": PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content
    assert response.json()["id"] == patient.id
    me = csrf_api.get("/api/me").json()
    assert me == {
        "id": patient.id,
        "username": patient.username,
        "role": "patient",
        "eth_address": patient.eth_address,
        "key_kind": "wallet",
        "hospital": None,
    }


def test_login_without_csrf_token_is_refused(csrf_api: APIClient, patient: User) -> None:
    response = csrf_api.post(
        "/api/auth/login", {"username": patient.username, "password": PASSWORD}, format="json"
    )
    body = assert_error(response, 403, "csrf_failed")
    assert "/api/auth/csrf" in body["detail"]


def test_session_writes_need_the_csrf_token_after_login(csrf_api: APIClient, patient: User) -> None:
    token = csrf_token(csrf_api)
    csrf_api.post(
        "/api/auth/login",
        {"username": patient.username, "password": PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert_error(csrf_api.post("/api/auth/tokens", {"name": "ci"}, format="json"), 403)
    # login rotated the token: the SPA reads the new cookie
    fresh = csrf_api.cookies["csrftoken"].value
    response = csrf_api.post("/api/auth/tokens", {"name": "ci"}, format="json", HTTP_X_CSRFTOKEN=fresh)
    assert response.status_code == 201, response.content


def test_wrong_password_is_401_bad_credentials(api: APIClient, patient: User) -> None:
    response = api.post("/api/auth/login", {"username": patient.username, "password": "nope"}, format="json")
    assert_error(response, 401, "bad_credentials")
    assert_error(api.get("/api/me"), 401)


def test_login_without_password_names_the_field(api: APIClient) -> None:
    body = assert_error(api.post("/api/auth/login", {"username": "x"}, format="json"), 400)
    assert body["field"] == "password"


def test_logout_ends_the_session(api: APIClient, patient: User) -> None:
    api.post("/api/auth/login", {"username": patient.username, "password": PASSWORD}, format="json")
    assert api.get("/api/me").status_code == 200
    assert api.post("/api/auth/logout").status_code == 204
    assert_error(api.get("/api/me"), 401, "not_authenticated")


def test_unauthenticated_requests_get_401_in_the_error_shape(api: APIClient) -> None:
    for url in ["/api/me", "/api/hospitals", "/api/doctors", "/api/auth/tokens"]:
        response = api.get(url)
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Token"


def test_me_shows_a_doctors_hospital(api: APIClient, doctor: User) -> None:
    api.force_authenticate(doctor)
    me = api.get("/api/me").json()
    hospital = doctor.hospital
    assert hospital is not None
    assert me["role"] == "doctor"
    assert me["hospital"]["slug"] == hospital.slug
    assert me["hospital"]["account_address"] == hospital.account_address


# --- API tokens -------------------------------------------------------------------------------


def test_token_is_shown_once_and_only_its_hash_is_stored(api: APIClient, patient: User) -> None:
    api.force_authenticate(patient)
    created = api.post("/api/auth/tokens", {"name": "laptop", "password": PASSWORD}, format="json").json()
    plaintext = created["token"]
    row = ApiToken.objects.get(pk=created["id"])
    assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {row.token_hash, row.key_prefix, row.name}
    assert plaintext.startswith(row.key_prefix)
    listed = api.get("/api/auth/tokens").json()
    assert [t["id"] for t in listed] == [row.id]
    assert "token" not in listed[0]


def test_token_authenticates_without_csrf_and_records_last_use(patient: User) -> None:
    token, plaintext = identity_services.create_api_token(user=patient, name="ci")
    api = token_client(plaintext)
    assert api.get("/api/me").json()["id"] == patient.id
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first_use is not None
    api.get("/api/me")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use  # within the minute: no write
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/me")
    last_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert last_use is not None and last_use > first_use
    assert (
        api.post("/api/auth/tokens", {"name": "another", "password": PASSWORD}, format="json").status_code
        == 201
    )  # no CSRF for tokens


def test_revoked_token_no_longer_authenticates(patient: User) -> None:
    token, plaintext = identity_services.create_api_token(user=patient, name="ci")
    api = token_client(plaintext)
    assert api.delete(f"/api/auth/tokens/{token.id}").status_code == 204
    assert_error(api.get("/api/me"), 401, "authentication_failed")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_unknown_token_is_401(db: None) -> None:
    assert_error(token_client("hh_not-a-real-token").get("/api/me"), 401, "authentication_failed")


def test_another_users_token_id_is_404_and_stays_live(
    api: APIClient, patient: User, other_patient: User
) -> None:
    theirs, their_plaintext = identity_services.create_api_token(user=other_patient, name="theirs")
    api.force_authenticate(patient)
    assert_error(api.delete(f"/api/auth/tokens/{theirs.id}"), 404, "token_not_found")
    assert token_client(their_plaintext).get("/api/me").status_code == 200


def test_token_of_a_deactivated_user_is_refused(db: None) -> None:
    user = UserFactory.create()
    _, plaintext = identity_services.create_api_token(user=user, name="ci")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(token_client(plaintext).get("/api/me"), 401, "authentication_failed")


def test_schema_documents_every_identity_endpoint(api: APIClient) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in [
        "/api/auth/csrf",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/siwe/nonce",
        "/api/auth/siwe/verify",
        "/api/auth/tokens",
        "/api/auth/tokens/{token_id}",
        "/api/me",
        "/api/hospitals",
        "/api/doctors",
    ]:
        assert path in text, path


def test_password_guessing_is_throttled(
    api: APIClient, patient: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DRF reads the rates once, at import; the test lowers the sign-in rate to 3 a minute.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sign_in": "3/minute"})
    guesses = [
        api.post("/api/auth/login", {"username": patient.username, "password": "guess"}, format="json")
        for _ in range(4)
    ]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]
    assert guesses[3].json()["error"] == "throttled"


# --- token lifetime, minting, logout ------------------------------------------------------------


def sign_in(api: APIClient, user: User) -> None:
    response = api.post("/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content


def test_a_token_expires_after_the_configured_days(patient: User, settings: SettingsWrapper) -> None:
    settings.API_TOKEN_TTL_DAYS = 30
    token, plaintext = identity_services.create_api_token(user=patient, name="ci")
    assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    api = token_client(plaintext)
    assert api.get("/api/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = assert_error(api.get("/api/me"), 401, "authentication_failed")
    assert "expired" in body["detail"]


def test_a_shorter_lifetime_may_be_asked_but_not_a_longer_one(
    api: APIClient, patient: User, settings: SettingsWrapper
) -> None:
    settings.API_TOKEN_TTL_DAYS = 30
    api.force_authenticate(patient)
    short = api.post(
        "/api/auth/tokens", {"name": "short", "password": PASSWORD, "expires_in_days": 2}, format="json"
    )
    assert short.status_code == 201, short.content
    expires_at = ApiToken.objects.get(pk=short.json()["id"]).expires_at
    assert abs(expires_at - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)
    too_long = api.post(
        "/api/auth/tokens", {"name": "long", "password": PASSWORD, "expires_in_days": 31}, format="json"
    )
    assert assert_error(too_long, 400)["field"] == "expires_in_days"


def test_a_token_cannot_mint_a_token_without_the_password(patient: User) -> None:
    _, plaintext = identity_services.create_api_token(user=patient, name="stolen")
    api = token_client(plaintext)
    body = assert_error(
        api.post("/api/auth/tokens", {"name": "successor"}, format="json"), 403, "password_required"
    )
    assert body["field"] == "password"
    assert_error(
        api.post("/api/auth/tokens", {"name": "successor", "password": "guess"}, format="json"),
        403,
        "bad_password",
    )
    assert ApiToken.objects.filter(user=patient).count() == 1


def test_a_fresh_sign_in_mints_without_the_password_and_a_stale_one_does_not(
    api: APIClient, patient: User
) -> None:
    from access.identity.api.auth_views import SIGNED_IN_AT

    sign_in(api, patient)
    assert api.post("/api/auth/tokens", {"name": "fresh"}, format="json").status_code == 201
    session = api.session
    session[SIGNED_IN_AT] = session[SIGNED_IN_AT] - 3600
    session.save()
    assert_error(api.post("/api/auth/tokens", {"name": "stale"}, format="json"), 403, "password_required")
    assert (
        api.post("/api/auth/tokens", {"name": "stale", "password": PASSWORD}, format="json").status_code
        == 201
    )


def test_wrong_passwords_when_minting_lock_it_until_a_password_sign_in(
    api: APIClient, patient: User, settings: SettingsWrapper
) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 3
    _, plaintext = identity_services.create_api_token(user=patient, name="stolen")
    thief = token_client(plaintext)
    codes = [
        thief.post("/api/auth/tokens", {"name": "x", "password": f"guess-{i}"}, format="json").status_code
        for i in range(6)
    ]
    assert codes == [403, 403, 423, 423, 423, 423]
    body = assert_error(
        thief.post("/api/auth/tokens", {"name": "x", "password": PASSWORD}, format="json"), 423, "key_locked"
    )
    assert "Signing in again" in body["detail"]
    sign_in(api, patient)  # the owner proves the password: the lock lifts at once
    assert (
        thief.post("/api/auth/tokens", {"name": "x", "password": PASSWORD}, format="json").status_code == 201
    )


def test_logout_with_a_token_revokes_that_token_only(patient: User) -> None:
    _, kept_plaintext = identity_services.create_api_token(user=patient, name="kept")
    gone, gone_plaintext = identity_services.create_api_token(user=patient, name="gone")
    api = token_client(gone_plaintext)
    assert api.post("/api/auth/logout").status_code == 204  # no CSRF token needed with a token
    assert_error(api.get("/api/me"), 401, "authentication_failed")
    assert ApiToken.objects.get(pk=gone.pk).revoked_at is not None
    assert token_client(kept_plaintext).get("/api/me").status_code == 200


def test_logging_out_of_a_session_leaves_the_users_tokens_alive(api: APIClient, patient: User) -> None:
    _, plaintext = identity_services.create_api_token(user=patient, name="script")
    sign_in(api, patient)
    assert api.post("/api/auth/logout").status_code == 204
    assert_error(api.get("/api/me"), 401)
    assert token_client(plaintext).get("/api/me").status_code == 200


def test_logout_with_a_revoked_token_is_401(patient: User) -> None:
    token, plaintext = identity_services.create_api_token(user=patient, name="ci")
    identity_services.revoke_api_token(user=patient, token_id=token.pk)
    assert_error(token_client(plaintext).post("/api/auth/logout"), 401, "authentication_failed")


def test_the_list_shows_live_tokens_with_prefix_and_dates_but_no_secret(
    api: APIClient, patient: User
) -> None:
    live, plaintext = identity_services.create_api_token(user=patient, name="live")
    expired, _ = identity_services.create_api_token(user=patient, name="expired")
    revoked, _ = identity_services.create_api_token(user=patient, name="revoked")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    identity_services.revoke_api_token(user=patient, token_id=revoked.pk)
    api.force_authenticate(patient)
    listed = api.get("/api/auth/tokens").json()
    assert [t["id"] for t in listed] == [live.id]
    assert set(listed[0]) == {"id", "name", "key_prefix", "created_at", "expires_at", "last_used_at"}
    assert plaintext.startswith(listed[0]["key_prefix"]) and plaintext not in str(listed)
