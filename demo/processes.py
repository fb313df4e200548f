"""The production shape on one machine (`manage.py serve`, `make serve`): every process a deployment runs,
each in its own process group, on whatever DATABASE_URL, CELERY_BROKER_URL and ETH_RPC_URL say.

- web: gunicorn with gthread workers (healthhash/gunicorn_conf.py), scales out;
- worker: a Celery worker with beat, beat's schedule in the database (demo's `celery_worker`): anchoring
  of the access log and of records, periodic training jobs. Beat is a singleton;
- relayer: `manage.py relay --follow`, a singleton by its lease (a second one waits);
- indexer: `manage.py sync_chain --follow`.

The relayer and the indexer run as processes of their own, so beat must not schedule them too: the
children run with CHAIN_LOOPS_IN_BEAT=false, and the beat rows an earlier demo left in the database for
them are removed. (Both at once would be safe, by the lease and idempotent handlers, but each relay pass
would hold the worker's only slot.)

A process that ends by itself is started again (three times a minute at most), after a SIGKILL to what its
group left behind: a gunicorn master's workers, or a Celery worker's pool process and beat (a beat left
running beside the new worker's would send every periodic task twice). A process that keeps dying stops
them all. Stopping (Ctrl-C, SIGTERM, or that): SIGTERM to every group at once but the worker's, whose main
process alone gets it (its warm shutdown: a pool process killed mid-task would lose the task), then
SIGKILL to any group still alive after `STOP_TIMEOUT_S`, and to what the worker's group left once its main
process has ended; the dev chain, when this command started it, stops last. Nothing is left: no process,
no listening port.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import connections

from demo.management.commands.demo import WORKER_OPTIONS

Say = Callable[[str], None]

STOP_TIMEOUT_S = 15.0
RESTARTS_PER_MINUTE = 3
LEFTOVERS_GONE_WITHIN_S = 5.0  # after a SIGKILL to a dead leader's group, before its replacement starts
log = logging.getLogger(__name__)
HEALTHY_WITHIN_S = 90.0


@dataclass(frozen=True)
class WebOptions:
    host: str
    port: int
    workers: int
    threads: int
    worker_class: str = "gthread"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    argv: list[str]  # how to start it again
    restarts: list[float] = field(default_factory=list)  # monotonic times of its recent restarts
    # Stopped by a SIGTERM to its main process only, which stops its group itself (the Celery worker's warm
    # shutdown); else the SIGTERM goes to its whole group.
    stops_its_group: bool = False


class ChildExited(RuntimeError):
    """A process ended by itself too often to be started again: the others are stopped too."""


def child_environment(*, log_format: str) -> None:
    """What every child reads at its start (they inherit this process's environment)."""
    os.environ["LOG_FORMAT"] = log_format
    os.environ["CHAIN_LOOPS_IN_BEAT"] = "false"  # the relayer and the indexer are processes here
    os.environ["PYTHONUNBUFFERED"] = "1"  # log lines as they happen, in order across processes
    # An app server never runs in debug mode (tracebacks on error pages, every SQL query kept in memory),
    # unless asked for explicitly.
    os.environ.setdefault("DJANGO_DEBUG", "false")


def drop_chain_loops_from_beat() -> int:
    """Remove the beat rows of the relay and sync tasks (written by a demo's beat); returns how many."""
    from django_celery_beat.models import PeriodicTask

    deleted, _ = PeriodicTask.objects.filter(name__in=settings.CHAIN_LOOP_BEAT_ENTRIES).delete()
    return deleted


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Where the children write: None = this process's terminal (serve); a folder = one <name>.log each (the demo,
# whose terminal tells the story).
LOG_DIR: Path | None = None


def child_output(name: str) -> Any:
    """The file a child named `name` writes to (None: inherit the terminal)."""
    if LOG_DIR is None:
        return None
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return (LOG_DIR / f"{name}.log").open("ab")


def _start(name: str, argv: list[str], *, stops_its_group: bool = False) -> Child:
    output = child_output(name)
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        argv,
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,  # its own group: Ctrl-C reaches serve, which stops the children in order
    )
    if output is not None:
        output.close()  # the child holds its own descriptor
    return Child(name, process, argv, stops_its_group=stops_its_group)


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def web_argv(web: WebOptions) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:healthhash.gunicorn_conf",
        "--bind",
        f"{web.host}:{web.port}",
        "--workers",
        str(web.workers),
        "--threads",
        str(web.threads),
        "--worker-class",
        web.worker_class,
    ]


def worker_argv() -> list[str]:
    """The Celery worker with beat, its schedule in the database: what serve runs as a `Child` (started
    again if it ends) and demo's `celery_worker` in a `with` block."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "healthhash",
        "worker",
        "-B",
        *WORKER_OPTIONS,
        # beat's schedule (and its state) in the database, where periodic training jobs add theirs
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
    ]


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _ppid, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _signal_stop(child: Child) -> None:
    if child.stops_its_group:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    else:
        _signal_group(child.process.pid, signal.SIGTERM)


def stop_children(children: list[Child], *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to every group at once (to the worker's main process only: its warm shutdown); SIGKILL to
    the groups still alive at the deadline, and to the worker's as soon as its main process has ended."""
    for child in children:
        _signal_stop(child)
    deadline = time.monotonic() + timeout_s
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        while not child.stops_its_group and group_alive(child.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_alive(child.process.pid) or child.process.poll() is None:
            _signal_group(child.process.pid, signal.SIGKILL)
            child.process.wait()


@contextmanager
def running_processes(web: WebOptions, say: Say) -> Iterator[list[Child]]:
    """web, relayer, indexer and the worker with beat, running; all stopped when the block ends
    (`stop_children`). A child `_check_alive` starts again is the same `Child`, with its new process: what
    is stopped is what runs then."""
    children: list[Child] = []
    try:
        children.append(_start("web", web_argv(web)))
        children.append(_start("relayer", _manage("relay", "--follow")))
        children.append(_start("indexer", _manage("sync_chain", "--follow")))
        children.append(_start("worker", worker_argv(), stops_its_group=True))
        for child in children:
            shown = "worker (Celery, with beat)" if child.name == "worker" else child.name
            say(f"  {shown}: pid {child.process.pid}")
        yield children
    finally:
        stop_children(children)


def health(url: str, *, timeout_s: float = 3.0) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of GET /api/health, or None while nothing answers."""
    try:
        response = requests.get(f"{url}/api/health", timeout=timeout_s)
        return response.status_code, response.json()
    except (requests.RequestException, ValueError):
        return None


def _check_alive(children: list[Child]) -> None:
    """Restarts a process that ended (what systemd or Kubernetes would do), at most RESTARTS_PER_MINUTE
    times a minute, once what its group left behind is gone (a gunicorn master's workers; a Celery worker's
    pool process and beat, which must not run beside the new worker's); raises ChildExited for a process
    that keeps dying."""
    for child in children:
        code = child.process.poll()
        if code is None:
            continue
        exited = f"{child.name} (pid {child.process.pid}) exited with code {code}"
        now = time.monotonic()
        child.restarts = [moment for moment in child.restarts if now - moment < 60]
        if len(child.restarts) >= RESTARTS_PER_MINUTE:
            raise ChildExited(exited)
        _signal_group(child.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + LEFTOVERS_GONE_WITHIN_S
        while group_alive(child.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        log.warning("%s; restarting it", exited)
        child.process = _start(child.name, child.argv, stops_its_group=child.stops_its_group).process
        child.restarts.append(now)


def wait_until_healthy(url: str, children: list[Child], *, within_s: float = HEALTHY_WITHIN_S) -> bool:
    """Polls /api/health until 200; False (with the processes still running) if not within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        _check_alive(children)
        answer = health(url)
        if answer is not None and answer[0] == 200:
            return True
        time.sleep(0.25)
    return False


def supervise(children: list[Child]) -> None:
    """Returns never: raises ChildExited when a process ends (a stop signal raises SystemExit here)."""
    while True:
        _check_alive(children)
        time.sleep(0.5)


def describe_health(url: str) -> list[str]:
    answer = health(url)
    if answer is None:
        return ["  health: no answer"]
    _status, body = answer
    return [
        f"  {name}: {part['status']} ({part['detail']})"
        for name, part in body.items()
        if isinstance(part, dict)
    ]


def release_database() -> None:
    """The serving processes have their own connections; this one keeps none open while it waits."""
    connections.close_all()
