"""One convention for API paths, over real HTTP: every endpoint answers with and without a trailing slash
(`/api/doctors/` as `/api/doctors`; `/api/schema` as `/api/schema/`: tests/healthhash/test_api_errors.py),
writes too, and any other path under /api/ is a JSON 404 in the error shape, with DEBUG on or off; outside
/api/ the portal answers."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pytest_django.fixtures import Settings as SettingsWrapper

from access.identity import services as identity_services
from access.models import ApiToken
from tests.factories import PASSWORD, DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(live_server: Any) -> requests.Session:
    """A patient's API token, on a session whose paths are relative to the live server."""
    _, token = identity_services.create_api_token(user=PatientFactory.create(), name="slash")
    http = requests.Session()
    http.headers["Authorization"] = f"Token {token}"
    return http


def test_a_list_answers_the_same_with_and_without_a_slash(
    live_server: Any, session: requests.Session
) -> None:
    DoctorFactory.create()
    bare, slashed = (
        session.get(f"{live_server.url}/api/doctors"),
        session.get(f"{live_server.url}/api/doctors/"),
    )
    assert bare.status_code == slashed.status_code == 200
    assert bare.json() == slashed.json() and bare.json()["count"] == 1


def test_writes_with_a_slash_reach_their_view(live_server: Any, session: requests.Session) -> None:
    minted = session.post(
        f"{live_server.url}/api/auth/tokens/",
        json={"name": "second", "password": PASSWORD},
        allow_redirects=False,
    )
    assert minted.status_code == 201, minted.text
    gone = session.delete(f"{live_server.url}/api/auth/tokens/{minted.json()['id']}/", allow_redirects=False)
    assert gone.status_code == 204, gone.text
    assert ApiToken.objects.get(pk=minted.json()["id"]).revoked_at is not None


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_paths_are_a_json_404_with_or_without_a_slash(
    live_server: Any, session: requests.Session, settings: SettingsWrapper, debug: bool
) -> None:
    settings.DEBUG = debug
    unrouted = ["/api/no-such-thing", "/api/no-such-thing/", "/api/records/not-a-uuid/", "/api/", "/api"]
    # A routed path with a slash reaches its view, which says what it did not find.
    answers = {**dict.fromkeys(unrouted, "not_found"), "/api/doctors/999999/": "doctor_not_found"}
    for path, code in answers.items():
        response = session.get(f"{live_server.url}{path}", allow_redirects=False)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json", path
        body = response.json()
        assert body == {"error": code, "detail": body["detail"], "field": None}, path


def test_outside_the_api_the_portal_answers(live_server: Any) -> None:
    response = requests.get(f"{live_server.url}/doctors/", allow_redirects=False)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.status_code in (200, 503)  # the built portal, or the page saying to build it
