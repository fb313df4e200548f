"""A bench that measures in a state of its own (bench_api, bench_portal): a fresh folder under
VAR_DIR/tmp, and the same command started again inside it, so the bench's database, store, secrets and
chain never touch the caller's. Removed afterwards unless the caller keeps it (its logs are there).
On a Redis broker, bench_api runs a redis-server of its own too (`own_redis`), which a fault may kill."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from demo.signals import stop_once

# How long a stopped bench gives its inner run to stop what it started (serve waits 90 s for its own).
CHILD_STOP_S = 120.0


@contextmanager
def own_state(prefix: str, *, keep: bool, say: Callable[[str], object]) -> Iterator[Path]:
    """A fresh state folder for one run; removed when the block ends, or named if `keep`."""
    scratch = Path(settings.VAR_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        yield state
    finally:
        if keep:
            say(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def run_again_inside(command: str, argv: list[str], env: dict[str, str]) -> None:
    """`manage.py command argv` in a child process with `env`; CommandError if it fails.

    Stopped on the way (Ctrl-C, or SIGTERM under `sigterm_unwinds`), it first asks the child to stop
    with SIGTERM and gives it the time to stop what it started (its server, chain and workers), SIGKILL
    only after that: `subprocess.run` would SIGKILL it at once and leave its processes running."""
    child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), command, *argv], env=env
    )
    try:
        returncode = child.wait()
    except BaseException:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=CHILD_STOP_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    if returncode:
        raise CommandError(f"the benchmark failed (exit {returncode})")


def stop_signals() -> None:
    """In a bench's inner run (a process of its own): SIGINT and SIGTERM (a timeout's, a plain kill) end
    it by unwinding, so its `with` blocks stop the processes it started; later ones are ignored until
    that is done."""
    signal.signal(signal.SIGINT, stop_once)
    signal.signal(signal.SIGTERM, stop_once)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """For the outer run, while it lasts: SIGTERM unwinds it as Ctrl-C does (its inner run is asked to
    stop, its redis-server stopped, its state folder removed) instead of ending it where it stands. The
    previous handler comes back afterwards (the bench may run inside another program, a test run)."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- a Redis broker of its own ---------------------------------------------------------------------

REDIS_SCHEMES = ("redis://", "rediss://")
REDIS_UP_WITHIN_S = 30.0


@dataclass(frozen=True)
class OwnRedis:
    """A redis-server of the bench's own on 127.0.0.1:`port`, keeping nothing on disk (`--save ""
    --appendonly no`): killed, it comes back empty, every message it held lost. Its files (pid, log) are
    in `folder`, under the bench's state folder; whoever started it last, its pid is in the pid file."""

    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "redis.pid"

    def argv(self) -> list[str]:
        server = shutil.which("redis-server")
        if server is None:
            raise CommandError("a Redis broker needs redis-server on PATH for the bench's own Redis")
        # redis-server rewrites its process title: its pid file, not its command line, says which it is.
        return [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--pidfile",
            str(self.pid_file),
            "--logfile",
            str(self.folder / "redis.log"),
        ]

    def start(self) -> subprocess.Popen[bytes]:
        """Starts it (its own session: a Ctrl-C reaches the bench, which stops it) and waits until it
        answers PING; CommandError if it does not within REDIS_UP_WITHIN_S."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + REDIS_UP_WITHIN_S
        while not (self.answers() and self.pid() == process.pid):
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"the bench's own redis-server did not start (see {self.folder})")
            time.sleep(0.05)
        return process

    def answers(self, timeout_s: float = 1.0) -> bool:
        """Whether it answers PING (one inline command on a fresh connection)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pid(self) -> int | None:
        """The pid in its pid file when that process is a live redis-server, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        # its title: "/usr/bin/redis-server 127.0.0.1:<port>"
        server, _, address = title.split(b"\0")[0].partition(b" ")
        ours = server.endswith(b"redis-server") and address.endswith(b":%d" % self.port)
        return pid if ours and state != "Z" else None

    def stop(self) -> None:
        """SIGTERM to the one running now (SIGKILL if it lingers), whoever started it."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.pid() == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid() == pid:
            os.kill(pid, signal.SIGKILL)


def is_redis(url: str) -> bool:
    return url.startswith(REDIS_SCHEMES)


@contextmanager
def own_redis(state: Path, *, port: int, say: Callable[[str], object]) -> Iterator[OwnRedis]:
    """A redis-server of the bench's own in `state`/redis until the block ends (a shared Redis, such as the
    one CELERY_BROKER_URL names, is never touched: the bench points its processes at this one)."""
    server = OwnRedis(port=port, folder=state / "redis")
    first = server.start()
    say(f"redis: the bench's own on port {port} (pid {first.pid})")
    try:
        yield server
    finally:
        server.stop()  # the one running now: this first one, or the one a broker fault started again
        if first.poll() is None:
            first.terminate()
        first.wait()
