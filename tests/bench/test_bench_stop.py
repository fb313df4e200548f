"""A bench stopped with SIGTERM (a `timeout`, a plain `kill` of the command) stops every process it
started and removes its state folder. Before, `bench_api` died where it stood: its inner run, `serve` with
gunicorn, the Celery worker and anvil, and its redis-server kept running until killed by hand.

Only the outer process is signalled, as `kill PID` does: it must ask its inner run to stop, and wait."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings

from tests.demo.test_serve import _descendants, _still_running, _wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc"),
]

UP_WITHIN_S = 240.0


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put("")


def test_a_sigterm_to_bench_api_stops_everything_it_started_and_removes_its_state(tmp_path: Path) -> None:
    env = os.environ | {"HEALTHHASH_VAR_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    bench = subprocess.Popen(
        [sys.executable, "manage.py", "bench_api", "--clients=1", "--seconds=120", "--records=1"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(bench.stderr, said), daemon=True).start()
    seen: list[str] = []
    started: dict[int, str] = {}
    stopped = False
    try:
        # "setup:" comes once serve answers healthy: its web, worker, relayer, indexer and chain are up.
        while not (seen and seen[-1].startswith("setup:")):
            line = said.get(timeout=UP_WITHIN_S)
            assert line, f"the bench ended before serving:\n{''.join(seen)}"
            seen.append(line)
        started = _descendants(bench.pid)
        names = " ".join(started.values())
        assert "serve" in names and "gunicorn" in names and "anvil" in names, names
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=180) != 0  # stopped, not finished
        with contextlib.suppress(AssertionError):
            _wait_for("the bench's processes to stop", lambda: not _still_running(started), timeout_s=30)
        left = _still_running(started)
        assert left == [], "left running after the bench stopped"
        assert not list((tmp_path / "tmp").glob("hh-bench-api-*")), "the bench's state folder is left behind"
        stopped = True
    finally:
        if not stopped:  # a failed run leaves nothing behind for the tests after it
            for pid in [bench.pid, *started]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        bench.wait()
