"""GET /api/health answers for the database, the broker, the chain and the store: 200 when all are ok, 503
with the component that is down, each within about a second, without authentication, and without a URL,
a credential or a file path in any detail. Every "down" here is real: a closed port, a node that accepts
and never answers, a deleted or read-only store folder, a PostgreSQL server that is not there.

The database cannot be taken away from the test process itself (pytest holds it), so that case runs the
app in a child process whose DATABASE_URL points at a closed port; the same child has its store folder
mounted read-only (as root, in a mount namespace of its own) or chmod-ed read-only (as another user).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from contracts import client
from contracts.models import Deployment
from contracts.node import free_port
from ehr import store
from ehr.storage import LocalBlockStore
from tests.factories import PatientFactory
from tests.fixtures.chain import DeployedContracts, deploy_contract

pytestmark = pytest.mark.django_db(transaction=True)  # the checks run in threads, on their own connections

COMPONENTS = {"database", "broker", "chain", "store"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def healthy(chain: DeployedContracts, settings: Any, tmp_path: Path) -> DeployedContracts:
    """Every component up: the session chain with all four contracts recorded, a broker and a store of
    this test's own (the store folder from the autouse fixture)."""
    settings.CELERY_BROKER_URL = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    training = deploy_contract(
        chain.w3,
        "TrainingRegistry",
        chain.directory.address,
        chain.accounts.relayer.address,
        sender=chain.accounts.relayer.address,
    )
    Deployment.objects.create(
        chain_id=chain.chain_id, name="TrainingRegistry", address=training.address, tx_hash="", block_number=0
    )
    return chain


def _health(path: str = "/api/health", **headers: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = APIClient().get(path, headers=headers)
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json(), time.monotonic() - started


def _assert_shape(body: dict[str, Any]) -> None:
    assert set(body) == {"status"} | COMPONENTS
    for name in COMPONENTS:
        assert set(body[name]) == {"status", "detail", "ms"}, body[name]
        assert body[name]["status"] in ("ok", "down")


def _assert_nothing_secret(body: dict[str, Any], *secrets: str) -> None:
    text = json.dumps(body)
    for secret in ("://", "127.0.0.1", str(django_settings.VAR_DIR), "/tmp", "sqlite3", *secrets):
        assert secret not in text, (secret, body)


def test_all_components_ok_is_200_without_authentication(healthy: DeployedContracts) -> None:
    status, body, _ = _health()
    assert status == 200, body
    _assert_shape(body)
    assert body["status"] == "ok" and all(body[name]["status"] == "ok" for name in COMPONENTS)
    head = healthy.w3.eth.block_number
    assert body["chain"]["detail"].startswith(f"chain {healthy.chain_id}, head block ")
    assert int(body["chain"]["detail"].split("head block ")[1].split(",")[0]) >= head
    assert "4 contracts deployed" in body["chain"]["detail"]
    _assert_nothing_secret(body)


def test_a_bad_token_or_a_trailing_slash_changes_nothing(healthy: DeployedContracts) -> None:
    status, body, _ = _health("/api/health/", HTTP_AUTHORIZATION="Token not-a-token")
    assert status == 200 and body["status"] == "ok"


def test_chain_node_at_a_closed_port_is_503_chain_down(healthy: DeployedContracts, settings: Any) -> None:
    settings.ETH_RPC_URL = f"http://rpc-user:rpc-password@127.0.0.1:{free_port()}/v3/rpc-api-key"
    client.reset_caches()
    status, body, seconds = _health()
    assert status == 503 and body["status"] == "down"
    assert body["chain"]["status"] == "down"
    assert all(body[name]["status"] == "ok" for name in COMPONENTS - {"chain"}), body
    assert seconds < 2
    _assert_nothing_secret(body, "rpc-password", "rpc-api-key", "rpc-user")


def test_contracts_not_deployed_on_the_chain_is_chain_down(healthy: DeployedContracts) -> None:
    Deployment.objects.filter(name__in=["Anchors", "TrainingRegistry"]).delete()
    status, body, _ = _health()
    assert status == 503 and body["chain"]["status"] == "down"
    assert body["chain"]["detail"].endswith("not deployed: Anchors, TrainingRegistry")


@pytest.fixture
def silent_node() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel does) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_node_that_never_answers_costs_about_a_second(
    healthy: DeployedContracts, settings: Any, silent_node: int
) -> None:
    settings.ETH_RPC_URL = f"http://127.0.0.1:{silent_node}"
    settings.HEALTH_TIMEOUT_S = 1.0
    client.reset_caches()
    status, body, seconds = _health()
    assert status == 503 and body["chain"]["status"] == "down", body
    assert body["database"]["status"] == body["store"]["status"] == "ok"
    assert seconds < 1.6, seconds


def test_broker_at_a_closed_port_is_503_broker_down(healthy: DeployedContracts, settings: Any) -> None:
    settings.CELERY_BROKER_URL = f"redis://:broker-password@127.0.0.1:{free_port()}/7"
    status, body, seconds = _health()
    assert status == 503 and body["broker"]["status"] == "down"
    assert body["broker"]["detail"].startswith("redis does not answer")
    assert all(body[name]["status"] == "ok" for name in COMPONENTS - {"broker"}), body
    assert seconds < 2
    _assert_nothing_secret(body, "broker-password")


def test_store_folder_deleted_under_the_server_is_store_down(healthy: DeployedContracts) -> None:
    assert _health()[1]["store"]["status"] == "ok"  # the store is open (and cached) from here on
    shutil.rmtree(django_settings.IPFS_LOCAL_DIR)
    status, body, _ = _health()
    assert status == 503 and body["store"]["status"] == "down", body
    assert all(body[name]["status"] == "ok" for name in COMPONENTS - {"store"}), body
    _assert_nothing_secret(body, "ipfs", "packs/", "index.sqlite3", "index.lock")


def test_the_probe_leaves_nothing_pinned(healthy: DeployedContracts) -> None:
    for _ in range(3):
        assert _health()[0] == 200
    assert list(store.content_store().list_roots()) == []


# --- the database down (and a read-only store): the app in a child process --------------------------------

_CHILD = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/api/health")
print(json.dumps([response.status_code, response.json()]))
"""


def _read_only_command(store_dir: Path, argv: list[str]) -> list[str]:
    """`argv` with `store_dir` read-only for it: a read-only bind mount in a mount namespace of its own
    (root ignores file modes), or plain file modes (anyone else)."""
    if os.geteuid() != 0:
        for path in [store_dir, *store_dir.rglob("*")]:
            path.chmod(stat.S_IREAD | stat.S_IEXEC if path.is_dir() else stat.S_IREAD)
        return argv
    if subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode != 0:
        pytest.fail("running as root without the right to mount: cannot make a folder read-only for root")
    script = (
        f'mount --bind "{store_dir}" "{store_dir}" && mount -o remount,bind,ro "{store_dir}" && exec "$@"'
    )
    return ["unshare", "-m", "sh", "-c", script, "sh", *argv]


def test_database_down_and_read_only_store_in_a_child_process(tmp_path: Path) -> None:
    var = tmp_path / "var"
    store_dir = var / "ipfs"
    LocalBlockStore(store_dir)  # an existing store, which the child may read but not write
    closed = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "healthhash.settings",
        "HEALTHHASH_VAR_DIR": str(var),
        "DATABASE_URL": f"postgres://hh:db-password@127.0.0.1:{closed}/healthhash",
        "ETH_RPC_URL": f"http://127.0.0.1:{free_port()}",
        "CELERY_BROKER_URL": "memory://",
    }
    try:
        done = subprocess.run(
            _read_only_command(store_dir, [sys.executable, "-c", _CHILD]),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        for path in [store_dir, *store_dir.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
    assert done.returncode == 0, done.stderr[-3000:]
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503
    _assert_shape(body)
    assert body["database"]["status"] == "down", body
    assert body["database"]["detail"].startswith("postgresql does not answer")
    assert body["store"]["status"] == "down", body
    assert body["store"]["detail"].startswith("local block store is not writable or readable")
    assert body["chain"]["status"] == "down" and body["broker"]["status"] == "ok"
    _assert_nothing_secret(body, "db-password", str(var))
    assert "db-password" not in done.stderr  # nor in the log lines the child wrote


# --- trailing slashes: every /api/ route answers both spellings, the same way ----------------------------


def _api_routes(patterns: list[Any], prefix: str = "") -> list[str]:
    """The /api/ routes without path parameters, as written in the URLconf."""
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and "<" not in route and route.startswith("api/"):
            routes.append("/" + route)
    return routes


def test_every_api_route_answers_with_and_without_a_trailing_slash() -> None:
    api = APIClient()
    api.force_authenticate(PatientFactory.create())
    routes = _api_routes(get_resolver().url_patterns)
    assert {"/api/health", "/api/doctors", "/api/schema/"} <= set(routes)
    for route in routes:
        if route == "/api/health":
            continue  # its status depends on the components; asserted above
        bare = route.rstrip("/")
        with_slash, without = api.get(bare + "/"), api.get(bare)
        assert with_slash.status_code == without.status_code != 404, route
        assert with_slash["Content-Type"].split(";")[0] == without["Content-Type"].split(";")[0], route


def test_a_post_with_a_trailing_slash_keeps_its_body() -> None:
    patient = PatientFactory.create()
    wrong = {"username": patient.username, "password": "wrong password"}
    without, with_slash = (APIClient().post(path, wrong) for path in ("/api/auth/login", "/api/auth/login/"))
    empty = APIClient().post("/api/auth/login/", {})
    assert with_slash.status_code == without.status_code and with_slash.json() == without.json()
    assert with_slash.json()["error"] != empty.json()["error"]  # the body was read: a wrong password
