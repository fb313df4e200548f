"""Only `manage.py devchain`, `manage.py demo` and the test session start a chain; everything else that finds
no node says so, naming the URL, and starts nothing. The processes that do start one stop it (and every
process they started) when they are stopped with SIGTERM.

Processes are found through /proc (Linux), by a marker in their command line (the port, or the temporary
folder that holds their state) or by process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from contracts import client
from contracts.node import free_port, start_anvil
from demo.management.commands.demo import celery_worker
from healthhash.database_url import current_database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through /proc"),
]


def _processes() -> dict[int, tuple[str, int]]:
    """pid -> (command line, process group) of every live process we may read (zombies are dead: an exit
    status that their new parent, init, has not collected yet)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]  # the fields after "(comm)"
        if state != "Z":
            found[int(entry.name)] = (cmdline, int(pgrp))
    return found


def _anvils_on(port: int) -> list[int]:
    return [
        pid for pid, (cmd, _) in _processes().items() if "anvil" in cmd and f"--port {port} " in cmd + " "
    ]


def _with(marker: str) -> list[int]:
    return [pid for pid, (cmd, _) in _processes().items() if marker in cmd and pid != os.getpid()]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(what: str, condition: Callable[[], Any], *, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _env(port: int, **extra: str) -> dict[str, str]:
    """The environment of a command with ETH_RPC_URL empty and the dev chain on `port`."""
    return os.environ | {
        "ETH_RPC_URL": "",
        "DEV_CHAIN_PORT": str(port),
        "CELERY_BROKER_URL": "memory://",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


# --- nothing but the owners starts a chain --------------------------------------------------------


def test_a_client_call_with_no_node_names_the_url_and_how_to_start_one_and_starts_nothing(
    settings: Any,
) -> None:
    port = free_port()
    settings.ETH_RPC_URL = ""
    settings.DEV_CHAIN_PORT = port
    client.reset_caches()
    try:
        with pytest.raises(client.ChainUnavailable) as caught:
            client.latest_block()
    finally:
        client.reset_caches()
    assert f"no chain node answers at http://127.0.0.1:{port}" in caught.value.detail
    assert "manage.py devchain" in caught.value.detail
    assert not _listening(port) and _anvils_on(port) == []


def test_no_node_message_names_a_configured_url_without_its_credentials(settings: Any) -> None:
    port = free_port()
    settings.ETH_RPC_URL = f"http://user:rpc-password@127.0.0.1:{port}/v3/rpc-api-key"
    client.reset_caches()
    try:
        with pytest.raises(client.ChainUnavailable) as caught:
            client.rpc("eth_blockNumber")
    finally:
        client.reset_caches()
    assert f"at http://127.0.0.1:{port}/…" in caught.value.detail and "ETH_RPC_URL" in caught.value.detail
    assert "rpc-password" not in caught.value.detail and "rpc-api-key" not in caught.value.detail


@pytest.mark.parametrize("command", [["sync_chain"], ["relay"]])
def test_a_one_off_command_with_no_node_says_so_and_starts_no_chain(command: list[str]) -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=settings.BASE_DIR,
        env=_env(port, DATABASE_URL=current_database_url(), HEALTHHASH_VAR_DIR=str(settings.VAR_DIR)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = done.stdout + done.stderr
    assert f"no chain node answers at http://127.0.0.1:{port}" in said, said
    assert done.returncode == 1, said  # a script must not take "nothing indexed" for success
    assert not _listening(port) and _anvils_on(port) == []


# --- the owners stop what they started --------------------------------------------------------------


def test_devchain_stopped_with_sigterm_stops_its_anvil_which_dumps_its_state(tmp_path: Path) -> None:
    port = free_port()
    devchain = subprocess.Popen(
        [sys.executable, "manage.py", "devchain"],
        cwd=settings.BASE_DIR,
        env=_env(port, HEALTHHASH_VAR_DIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for("the dev chain", lambda: client.answers(f"http://127.0.0.1:{port}"))
        [anvil] = _anvils_on(port)
        devchain.send_signal(signal.SIGTERM)
        assert devchain.wait(timeout=30) == 0
    finally:
        if devchain.poll() is None:
            devchain.kill()
            devchain.wait()
    assert anvil not in _processes() and not _listening(port)
    assert (tmp_path / "chain" / "anvil-state.json").exists()


@pytest.mark.slow
def test_demo_stopped_with_sigterm_leaves_no_process(tmp_path: Path) -> None:
    """The whole `manage.py demo`, stopped while it sets up (after its chain started): what it started
    stops with it. (Stopping it while it serves goes through the same unwinding, with the worker, whose
    own stop is the next test; a full demo run imports 17,639 records, too slow for the suite.)"""
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--no-serve"],
        cwd=settings.BASE_DIR,
        env=_env(port, HEALTHHASH_VAR_DIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        chain_line = next(line for line in iter(demo.stdout.readline, "") if line.startswith("chain:"))
        assert chain_line.startswith("chain: started the project's anvil"), chain_line
        assert len(_anvils_on(port)) == 1
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert _with(str(tmp_path)) == [] and _anvils_on(port) == [] and not _listening(port)


@pytest.mark.slow
def test_demo_worker_stops_with_beat_and_its_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Celery worker (with beat) that `manage.py demo` runs beside the API: leaving its block ends
    its whole process group. Its chain tasks find no node and start none."""
    port = free_port()
    env = _env(port, HEALTHHASH_VAR_DIR=str(tmp_path), DATABASE_URL=current_database_url())
    env["CELERY_BROKER_URL"] = "filesystem://"  # the demo's broker (under tmp_path): beat's tasks run
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the worker inherits this process's environment
    with celery_worker() as worker:
        # prefork pool child and the embedded beat process: the worker's group has three members.
        _wait_for("the worker's pool and beat", lambda: len(_group(worker.pid)) >= 3)
        time.sleep(3)  # beat's first sync-chain and relay tasks run against the missing node
        assert worker.poll() is None
    assert _group(worker.pid) == []
    assert _anvils_on(port) == [] and not _listening(port)


def _group(pgid: int) -> list[int]:
    return [pid for pid, (_, group) in _processes().items() if group == pgid]


def test_a_node_with_a_temporary_log_removes_it_when_stopped_and_keeps_it_when_it_died() -> None:
    """Test sessions start many nodes without a state file: their logs must not pile up in /tmp."""
    stopped = start_anvil()
    assert stopped.log_path.is_file()
    stopped.stop()
    assert not stopped.log_path.exists()

    died = start_anvil()
    try:
        os.killpg(died.process.pid, signal.SIGKILL)
        died.process.wait(timeout=10)
        died.stop()
        assert died.log_path.is_file()  # a node that died on its own keeps its log for the post-mortem
    finally:
        died.log_path.unlink(missing_ok=True)
