"""`manage.py serve` (what `make serve` runs) on free ports, as a user runs it: it starts the dev chain,
deploys the demo consortium, and runs gunicorn, the Celery worker with beat, the relayer and the indexer.
Through the API only: a patient adds a record and grants her doctor access (the relayer process mines
it, the indexer process sees it), the doctor opens the record, the patient reads that in her access log.
An indexer killed with SIGKILL is started again; so is the Celery worker whose main process is killed with
SIGKILL: its old pool process and beat are gone, and the new worker's beat anchors a record added after.
Then SIGINT: every process it started is gone, and both ports are free.

The database is this test's (SQLite file or PostgreSQL test database); the broker is CELERY_BROKER_URL
when set (the PostgreSQL run gives Redis), else the embedded one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from contracts.node import free_port
from healthhash.database_url import current_database_url
from tests.ehr.conftest import observation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc"),
]

REPO = Path(__file__).resolve().parents[2]
SERVING = "HealthHash serving at "


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process we may read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        table[int(entry.name)] = (int(ppid), state, cmdline)
    return table


def _descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every live process below `pid`."""
    table = _process_table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, state, cmdline) in table.items():
            if ppid == parent and child not in found and state != "Z":
                found[child] = cmdline
                frontier.append(child)
    return found


def _still_running(snapshot: dict[int, str]) -> list[str]:
    table = _process_table()
    return [
        cmdline
        for pid, cmdline in snapshot.items()
        if pid in table and table[pid][1] != "Z" and table[pid][2] == cmdline
    ]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(what: str, condition: Callable[[], Any], *, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Api:
    """A person using the API over HTTP: signs in with a session, then works with an API token."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        session = requests.Session()
        session.get(f"{url}/api/auth/csrf", timeout=30).raise_for_status()
        signed_in = session.post(
            f"{url}/api/auth/login",
            json={"username": username, "password": password},
            headers={"X-CSRFToken": session.cookies["csrftoken"]},
            timeout=30,
        )
        assert signed_in.status_code == 200, signed_in.text
        self.me = signed_in.json()
        minted = session.post(
            f"{url}/api/auth/tokens",
            json={"name": "test_serve"},
            headers={"X-CSRFToken": session.cookies["csrftoken"]},  # rotated at sign-in
            timeout=30,
        )
        assert minted.status_code == 201, minted.text
        self.headers = {
            "Authorization": f"Token {minted.json()['token']}",
            "X-Request-ID": f"serve-{username}",
        }

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=self.headers, timeout=30)


def _serve_env(folder: Path, chain_port: int) -> dict[str, str]:
    env = os.environ | {
        "HEALTHHASH_VAR_DIR": str(folder / "var"),
        "DATABASE_URL": current_database_url(),
        "ETH_RPC_URL": "",
        "DEV_CHAIN_PORT": str(chain_port),
        "PYTHONUNBUFFERED": "1",
        # beat anchors every waiting record every 2 s: a record anchored shows a worker with beat at work
        "RECORD_ANCHOR_EVERY_S": "2",
        "RECORD_ANCHOR_MAX_WAIT_S": "0",
    }
    env.pop("LOG_FORMAT", None)  # serve's default: json
    return env


def _start_serve(folder: Path, web_port: int, chain_port: int) -> subprocess.Popen[bytes]:
    """`manage.py serve` started, its stdout and stderr appended to `folder`/out and `folder`/err."""
    with (folder / "out").open("ab") as out, (folder / "err").open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--addr", f"127.0.0.1:{web_port}", "--threads", "2"],
            cwd=REPO,
            env=_serve_env(folder, chain_port),
            stdout=out,
            stderr=err,
        )


def _stop_for_sure(process: subprocess.Popen[bytes]) -> None:
    """Stop it as a user would, then for sure (a test that failed midway)."""
    if process.poll() is not None:
        return
    left = _descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, int, Path]]:
    """`manage.py serve` started; (process, URL, dev chain port, folder of its output files)."""
    web_port, chain_port = free_port(), free_port()
    process = _start_serve(tmp_path, web_port, chain_port)
    try:
        yield process, f"http://127.0.0.1:{web_port}", chain_port, tmp_path
    finally:
        _stop_for_sure(process)


def _said(folder: Path) -> str:
    return (folder / "out").read_text(errors="replace")


def test_serve_runs_every_process_serves_a_record_and_leaves_nothing_on_sigint(serve: Any) -> None:
    process, url, chain_port, folder = serve
    web_port = int(url.rsplit(":", 1)[1])

    def serving() -> bool:
        assert process.poll() is None, _said(folder)[-3000:] + (folder / "err").read_text()[-3000:]
        return SERVING in _said(folder)

    _wait_for("serve to say it is serving", serving, timeout_s=240)
    assert f"{SERVING}{url}/api/" in _said(folder)
    health = requests.get(f"{url}/api/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text

    running = _descendants(process.pid)
    commands = list(running.values())
    assert sum("gunicorn" in c for c in commands) >= 3  # the master and its 2 workers
    assert sum("celery" in c and " worker " in c for c in commands) >= 2  # main, pool and beat
    assert any("manage.py relay --follow" in c for c in commands)
    assert any("manage.py sync_chain --follow" in c for c in commands)
    assert any("anvil" in c and f"--port {chain_port} " in c for c in commands)

    _a_record_opened_through_the_api(url, folder)

    # A process that dies is started again (as a service manager would); serve keeps serving.
    [indexer] = [pid for pid, c in running.items() if "manage.py sync_chain --follow" in c]
    os.kill(indexer, signal.SIGKILL)

    def restarted() -> list[int]:
        again = _descendants(process.pid)
        return [pid for pid, c in again.items() if "manage.py sync_chain --follow" in c and pid != indexer]

    _wait_for("the indexer to be started again", restarted, timeout_s=30)
    assert process.poll() is None

    # The Celery worker's main process killed: what it left (pool process, beat) is stopped, and a new
    # worker with beat is started; records are anchored again.
    [worker] = _celery_workers(process.pid)
    left_behind = _descendants(worker)
    assert len(left_behind) >= 2, left_behind  # the pool process and beat
    os.kill(worker, signal.SIGKILL)

    def worker_again() -> list[int]:
        return [pid for pid in _celery_workers(process.pid) if pid != worker and len(_descendants(pid)) >= 2]

    _wait_for("a new Celery worker with its pool and beat", worker_again, timeout_s=90)
    assert process.poll() is None
    assert _still_running(left_behind) == []
    _a_record_anchored_through_the_api(url, folder)
    assert f"worker (pid {worker}) exited with code -9; restarting it" in (folder / "err").read_text()
    running = _descendants(process.pid)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 128 + signal.SIGINT
    assert _still_running(running) == []
    assert not _listening(web_port) and not _listening(chain_port)
    assert "stopped" in _said(folder).splitlines()[-1]

    lines = (folder / "err").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line on stderr is one JSON object
    by_id = [r for r in records if r.get("request_id") == "serve-dr-house"]
    assert any(r["logger"] == "healthhash.requests" and r["status"] == 200 for r in by_id)


def _celery_workers(serve_pid: int) -> list[int]:
    """The Celery worker main processes `serve` started (its children; their own children are the pool and
    beat)."""
    table = _process_table()
    return [
        pid
        for pid, (ppid, state, cmdline) in table.items()
        if ppid == serve_pid and state != "Z" and "celery" in cmdline and " worker " in cmdline
    ]


def _a_record_anchored_through_the_api(url: str, folder: Path) -> None:
    password = (folder / "var" / "secrets" / "demo_password").read_text().strip()
    alice = Api(url, "alice", password)
    created = alice.post("/api/records", {"resource": observation()})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]

    def anchored() -> bool:
        return bool(alice.get(f"/api/records/{record_id}").json()["record"]["anchored"])

    _wait_for("the new worker's beat to anchor a new record", anchored, timeout_s=90)


def _a_record_opened_through_the_api(url: str, folder: Path) -> None:
    password = (folder / "var" / "secrets" / "demo_password").read_text().strip()
    alice, house = Api(url, "alice", password), Api(url, "dr-house", password)

    created = alice.post("/api/records", {"resource": observation()})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    assert house.get(f"/api/records/{record_id}").status_code == 404  # no consent: not his to know of

    granted = alice.post(
        "/api/consents",
        {"grantee": house.me["eth_address"], "scope": "chart", "purpose": "TREATMENT", "password": password},
    )
    assert granted.status_code == 202, granted.text

    def active() -> bool:
        return alice.get(f"/api/consents/{granted.json()['id']}").json()["status"] == "active"

    _wait_for("the relayer and the indexer to make the grant active", active, timeout_s=60)
    opened = house.get(f"/api/records/{record_id}")
    assert opened.status_code == 200, opened.text
    log = alice.get("/api/patients/me/access-log").json()
    entries = log["results"] if isinstance(log, dict) else log
    assert any(e["record_id"] == record_id and e["outcome"] == "allowed" for e in entries), entries
