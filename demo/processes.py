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

A web, relayer or indexer process that ends by itself is started again (three times a minute at most);
the worker ending, or a process that keeps dying, stops them all. Stopping (Ctrl-C, SIGTERM, or that):
SIGTERM to every group at once, the worker's warm shutdown, then SIGKILL to any group still alive after
`STOP_TIMEOUT_S`; the dev chain, when this command started it, stops last. Nothing is left: no process,
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import connections

from demo.management.commands.demo import celery_worker

Say = Callable[[str], None]

STOP_TIMEOUT_S = 15.0
RESTARTS_PER_MINUTE = 3
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
    argv: list[str] | None = None  # how to start it again; None: the worker, which its own helper runs
    restarts: list[float] = field(default_factory=list)  # monotonic times of its recent restarts


class ChildExited(RuntimeError):
    """A process ended by itself and may not be restarted (the worker, or too many restarts): the others
    are stopped too."""


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


def _start(name: str, argv: list[str]) -> Child:
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
    return Child(name, process, argv)


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


def _signal_groups(children: list[Child], signum: int) -> None:
    for child in children:
        _signal_group(child.process.pid, signum)


def stop_children(children: list[Child], *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to every group at once; SIGKILL to the groups still alive at the deadline."""
    _signal_groups(children, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        while group_alive(child.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_alive(child.process.pid) or child.process.poll() is None:
            _signal_group(child.process.pid, signal.SIGKILL)
            child.process.wait()


def _kill_leftovers(pgids: list[int]) -> None:
    """SIGKILL to a group whose leader has ended but whose members have not (none, normally)."""
    for pgid in pgids:
        if group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)


@contextmanager
def running_processes(web: WebOptions, say: Say) -> Iterator[list[Child]]:
    """web, relayer, indexer and the worker with beat, running; all stopped when the block ends.

    On the way out (the callbacks run in reverse): SIGTERM to our three groups, the worker's own warm
    shutdown (SIGTERM to its main process only: a pool child killed mid-task would lose it), a check that
    the worker's group is empty, then the wait for our three, with SIGKILL at the deadline."""
    children: list[Child] = []
    worker_groups: list[int] = []
    with ExitStack() as stack:
        stack.callback(stop_children, children)
        stack.callback(_kill_leftovers, worker_groups)
        children.append(_start("web", web_argv(web)))
        children.append(_start("relayer", _manage("relay", "--follow")))
        children.append(_start("indexer", _manage("sync_chain", "--follow")))
        worker = stack.enter_context(celery_worker())
        worker_groups.append(worker.pid)
        stack.callback(_signal_groups, children, signal.SIGTERM)
        for child in children:
            say(f"  {child.name}: pid {child.process.pid}")
        say(f"  worker (Celery, with beat): pid {worker.pid}")
        yield [*children, Child("worker", worker)]


def health(url: str, *, timeout_s: float = 3.0) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of GET /api/health, or None while nothing answers."""
    try:
        response = requests.get(f"{url}/api/health", timeout=timeout_s)
        return response.status_code, response.json()
    except (requests.RequestException, ValueError):
        return None


def _check_alive(children: list[Child]) -> None:
    """Restarts a web, relayer or indexer process that ended (what systemd or Kubernetes would do), at most
    RESTARTS_PER_MINUTE times a minute; raises ChildExited for the worker or a process that keeps dying."""
    for child in children:
        code = child.process.poll()
        if code is None:
            continue
        exited = f"{child.name} (pid {child.process.pid}) exited with code {code}"
        now = time.monotonic()
        child.restarts = [moment for moment in child.restarts if now - moment < 60]
        if child.argv is None or len(child.restarts) >= RESTARTS_PER_MINUTE:
            raise ChildExited(exited)
        _signal_group(child.process.pid, signal.SIGKILL)  # what its group left behind (a master's workers)
        log.warning("%s; restarting it", exited)
        child.process = _start(child.name, child.argv).process
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
