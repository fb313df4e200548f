"""Bad input gets a 4xx in the one error shape, never a 500 and never an HTML page, in development too.

Covers what an attack on the running stack found: deep JSON, oversized and chunked bodies, non-integer
or huge list parameters, block numbers past the head or with the node down, unmatched routes, trailing
slashes, forwarded-for spoofing of the sign-in throttle, and secrets on Django's debug page.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory
from django.views.debug import technical_500_response
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from healthhash.parsers import BodyTooLarge, JSONParser
from tests.conftest import Personas
from tests.factories import PASSWORD, PatientFactory

ERROR_KEYS = {"error", "detail", "field"}
REPO = Path(__file__).resolve().parents[2]


def assert_error(response: Any, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    if code is not None:
        assert body["error"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def deep_json(depth: int) -> str:
    return '{"username": ' + "[" * depth + "]" * depth + ', "password": "x"}'


@pytest.fixture
def patient_api(db: None) -> APIClient:
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(PatientFactory.create())
    return api


@pytest.fixture
def debug(settings: Any) -> None:
    """Development mode: the mode in which Django would render its technical pages."""
    settings.DEBUG = True


# --- deep JSON, body size -------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_body_nested_5000_deep_is_a_400_not_a_debug_page(debug: None) -> None:
    api = APIClient(raise_request_exception=False)
    response = api.post("/api/auth/login", deep_json(5000), content_type="application/json")
    assert_error(response, 400, "too_deep")
    assert b"KEY_ENCRYPTION_KEYS" not in response.content


def test_json_nested_past_the_depth_limit_is_refused(patient_api: APIClient, settings: Any) -> None:
    settings.JSON_MAX_DEPTH = 20
    response = patient_api.post(
        "/api/records", '{"resource": ' + "[" * 30 + "]" * 30 + "}", content_type="application/json"
    )
    assert_error(response, 400, "too_deep")


class CountingStream(io.BytesIO):
    """A WSGI input that records whether the application read from it."""

    read_calls = 0

    def read(self, *args: Any) -> bytes:
        self.read_calls += 1
        return super().read(*args)

    def readline(self, *args: Any) -> bytes:
        self.read_calls += 1
        return super().readline(*args)


def test_body_over_the_limit_is_413_by_content_length_before_it_is_read(
    patient_api: APIClient, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"resource": "' + b"x" * 2000 + b'"}'
    stream = CountingStream(body)
    wsgi_input: dict[str, Any] = {"wsgi.input": stream}
    response = patient_api.generic(
        "POST",
        "/api/records",
        body.decode(),  # ASCII; generic() encodes it back to the same bytes
        content_type="application/json",
        CONTENT_LENGTH=str(len(body)),
        **wsgi_input,
    )
    body_json = assert_error(response, 413, "too_large")
    assert "1000" in body_json["detail"]
    assert stream.read_calls == 0


def test_parser_reads_at_most_the_limit_whatever_the_header_said(settings: Any) -> None:
    # Under ASGI the body stream is not cut at Content-Length: the parser's own bound is what holds.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = CountingStream(b'{"resource": "' + b"x" * 5000 + b'"}')
    with pytest.raises(BodyTooLarge):
        JSONParser().parse(stream, "application/json", {})
    assert stream.tell() == 1001


def test_chunked_body_without_length_is_refused_with_411(patient_api: APIClient) -> None:
    response = patient_api.generic(
        "POST",
        "/api/records",
        "",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "length_required")


# --- list parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=1e30", "limit"),
        ("limit=abc", "limit"),
        ("limit=99999999999999999999999999", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=501", "limit"),
        ("limit=", "limit"),
        ("offset=1e30", "offset"),
        ("offset=-5", "offset"),
        ("offset=9223372036854775807", "offset"),
    ],
)
@pytest.mark.parametrize(
    "path", ["/api/records", "/api/consents", "/api/patients/me/access-log", "/api/access-requests"]
)
def test_bad_page_parameters_are_400_naming_the_parameter(
    patient_api: APIClient, path: str, query: str, field: str
) -> None:
    assert_error(patient_api.get(f"{path}?{query}"), 400, field=field)


def test_good_page_parameters_still_page(patient_api: APIClient) -> None:
    response = patient_api.get("/api/consents?limit=500&offset=0")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.parametrize("query", ["patient=", "category=", "patient=not-an-address", "category=nonsense"])
def test_empty_or_malformed_filters_are_400_not_ignored(patient_api: APIClient, query: str) -> None:
    assert_error(patient_api.get(f"/api/records?{query}"), 400, field=query.split("=")[0])


# --- at_block -------------------------------------------------------------------------------------


def _check(p: Personas, **extra: Any) -> Any:
    api = p.client_for(p.alice)
    api.raise_request_exception = False
    query = {"patient": p.alice.eth_address, "grantee": p.bob.eth_address, "purpose": "TREATMENT", **extra}
    return api.get("/api/consents/check", query)


def test_at_block_of_2_to_the_63_is_400(personas: Personas) -> None:
    assert_error(_check(personas, at_block=str(2**63)), 400, field="at_block")


def test_at_block_past_the_head_is_400_with_the_head_in_the_message(personas: Personas) -> None:
    head = personas.chain.w3.eth.block_number
    body = assert_error(_check(personas, at_block=str(head + 1000)), 400, "future_block", "at_block")
    assert str(head) in body["detail"]
    assert _check(personas, at_block=str(head)).status_code == 200


def test_at_block_with_the_chain_down_is_503(personas: Personas, settings: Any) -> None:
    from contracts import client

    with socket.socket() as sock:  # a port nothing listens on: a real refused connection
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ETH_RPC_URL = f"http://127.0.0.1:{port}"
    client.reset_caches()
    assert_error(_check(personas, at_block="1"), 503, "chain_unavailable")


# --- routes: unmatched ids, trailing slashes, 500s ------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/records/not-a-uuid",
        "/api/consents/123",
        "/api/auth/tokens/abc",
        "/api/no-such-thing",
        "/api",
        "/api/records/00000000-0000-0000-0000-000000000000/nothing",
    ],
)
def test_unmatched_api_paths_are_a_json_404_in_development(
    patient_api: APIClient, debug: None, path: str
) -> None:
    assert_error(patient_api.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/me", "/api/me/", "/api/schema", "/api/schema/"])
def test_api_paths_answer_with_and_without_trailing_slash(patient_api: APIClient, path: str) -> None:
    response = patient_api.get(path)
    assert response.status_code == 200, response.content[:300]


@pytest.mark.django_db
def test_post_with_trailing_slash_reaches_the_view(debug: None) -> None:
    patient = PatientFactory()
    api = APIClient()
    response = api.post("/api/auth/login/", {"username": patient.username, "password": PASSWORD})
    assert response.status_code == 200, response.content


def test_server_error_under_api_is_the_json_shape_in_development(
    patient_api: APIClient, debug: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # A fake on purpose: a bug (an unexpected exception in a view) cannot be caused from outside.
    from access.identity.api import auth_views

    settings.KEY_ENCRYPTION_KEYS = "k1:c2VjcmV0LWtlay1tdXN0LW5vdC1sZWFrLTAxMjM0NTY="

    def broken(user: Any) -> dict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(auth_views, "_me", broken)
    response = patient_api.get("/api/me")
    body = assert_error(response, 500, "server_error")
    assert "a bug" not in body["detail"]
    assert b"c2VjcmV0" not in response.content


# --- the debug page outside /api/ masks every secret ----------------------------------------------


def _debug_page(request: Any) -> str:
    """Django's technical 500 page for an exception raised here (a frame that holds no secret)."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_debug_page_masks_kek_keys_and_credential_urls(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "KEY_ENCRYPTION_KEYS": "k1:S0VLLXNlY3JldC12YWx1ZQ==",
        "RELAYER_PRIVATE_KEY": "0xrelayer-secret-value",
        "SECRET_KEY": "django-secret-value",
        "CELERY_BROKER_URL": "redis://:broker-password@redis:6379/0",
        "ETH_RPC_URL": "https://mainnet.example/v3/rpc-api-key-value",
        "IPFS_API_URL": "http://user:ipfs-password@ipfs:5001",
        "CACHES": {"default": {"LOCATION": "redis://:cache-password@redis:6379/1"}},
    }
    for name, value in secrets.items():
        setattr(settings, name, value)
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", "db-password")
    settings.DEBUG = True
    # Under runserver request.META carries the process environment, HEALTHHASH_KEK included.
    page = _debug_page(RequestFactory().get("/not-api", HEALTHHASH_KEK="k1:ZW52LWtlay12YWx1ZQ=="))
    leaked = [
        value
        for value in [
            "S0VLLXNlY3JldC12YWx1ZQ",
            "relayer-secret-value",
            "django-secret-value",
            "broker-password",
            "rpc-api-key-value",
            "ipfs-password",
            "cache-password",
            "db-password",
            "ZW52LWtlay12YWx1ZQ",
        ]
        if value in page
    ]
    assert leaked == []
    assert "KEY_ENCRYPTION_KEYS" in page  # the setting is listed, its value masked


# --- sign-in throttle: the client cannot choose its own address -----------------------------------


@pytest.mark.django_db
def test_sign_in_throttle_ignores_a_forwarded_for_header_sent_by_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sign_in": "3/minute"})
    patient = PatientFactory()
    api = APIClient()
    statuses = [
        api.post(
            "/api/auth/login",
            {"username": patient.username, "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
        ).status_code
        for attempt in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_with_one_trusted_proxy_the_address_it_appended_is_the_client(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sign_in": "2/minute"})
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    patient = PatientFactory()
    api = APIClient()

    def attempt(forwarded: str) -> int:
        body = {"username": patient.username, "password": "guess"}
        return api.post("/api/auth/login", body, HTTP_X_FORWARDED_FOR=forwarded).status_code

    # The client prepends whatever it likes; the proxy appends the real address (the last entry).
    assert [attempt(f"10.0.0.{n}, 198.51.100.7") for n in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.8") == 401


# --- production secrets and var/ permissions (fresh processes) ------------------------------------


def _django_setup(env: dict[str, str], code: str = "") -> subprocess.CompletedProcess[str]:
    script = "import django; django.setup(); " + code
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "HEALTHHASH_KEK")}
    base.pop("RELAYER_PRIVATE_KEY", None)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "healthhash.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_secrets_refuses_to_start_and_generates_none(tmp_path: Path) -> None:
    var = tmp_path / "var"
    result = _django_setup({"HEALTHHASH_ENV": "production", "HEALTHHASH_VAR_DIR": str(var)})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "MissingSecret" in message
    for name in ("DJANGO_SECRET_KEY", "HEALTHHASH_KEK", "RELAYER_PRIVATE_KEY"):
        assert name in message
    assert not (var / "secrets").exists()


def test_production_with_secrets_set_starts(tmp_path: Path) -> None:
    result = _django_setup(
        {
            "HEALTHHASH_ENV": "production",
            "HEALTHHASH_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SECRET_KEY": "x" * 60,
            "HEALTHHASH_KEK": "k1:" + "A" * 43 + "=",
            "RELAYER_PRIVATE_KEY": "0x" + "11" * 32,
        },
        "print('started')",
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_var_state_is_created_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)  # an old checkout's var/, world-readable: tightened on start
    var.chmod(0o755)
    code = "from django.db import connection; connection.ensure_connection()"
    result = _django_setup({"HEALTHHASH_VAR_DIR": str(var)}, code)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "secrets").stat().st_mode) == 0o700
    for path in [*var.glob("healthhash.sqlite3*"), *(var / "secrets").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
