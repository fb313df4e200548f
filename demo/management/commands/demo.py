"""`manage.py demo` (what `make demo` runs): chain, contracts, demo consortium and charts, the narrated
story, then the API on 127.0.0.1:8000 with a Celery worker (relayer, indexer, audit anchoring) beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from contracts import client
from demo import people as demo_data
from demo.story import run_story


class Command(BaseCommand):
    help = "Run the HealthHash demo on the embedded stack, then serve the API."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Stop after the story.")
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        # Ctrl-C and a plain `kill` both end the demo by unwinding the `with` blocks: the worker and the
        # dev chain stop with it. (A background job of a non-interactive shell starts with SIGINT ignored.)
        signal.signal(signal.SIGINT, _stop_once)
        signal.signal(signal.SIGTERM, _stop_once)
        call_command("migrate", verbosity=0)
        # A dev chain this process started stops with it (anvil dumps its state on the way out); the next
        # `make demo` loads that state and finds everything where it was.
        with client.running_dev_chain() if not settings.ETH_RPC_URL else nullcontext() as chain:
            if chain is None:
                self.stdout.write(f"chain: {client.shown_url(settings.ETH_RPC_URL)} (ETH_RPC_URL)")
            elif chain.started:
                self.stdout.write(
                    f"chain: started the project's anvil at {chain.url} "
                    f"(state in {settings.DEV_CHAIN_STATE}); it stops with the demo"
                )
            else:
                self.stdout.write(f"chain: using the dev chain already running at {chain.url}")
            self._run(options)

    def _run(self, options: dict[str, Any]) -> None:
        say = self.stdout.write
        call_command("seed_demo")
        world = demo_data.create_people(demo_data.demo_password())
        say("")
        run_story(world, say)
        if options["no_serve"]:
            return
        say(f"\nServing the API on http://{options['addr']}/api/ (OpenAPI: /api/schema/). Ctrl-C stops.")
        with celery_worker():
            call_command("runserver", options["addr"], use_reloader=False)


WORKER_OPTIONS = ("--concurrency", "1", "--loglevel", "warning")


def _stop_once(signum: int, _frame: Any) -> None:
    """The first SIGINT/SIGTERM unwinds the demo; later ones are ignored so the clean-up runs to its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


@contextmanager
def celery_worker(*, stop_timeout_s: float = 20.0) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker with beat (relayer, indexer, audit anchoring) beside the API, in its own process
    group, so that stopping it also reaches beat and the pool's children: SIGTERM (a warm shutdown),
    then SIGKILL to the whole group if it has not ended in `stop_timeout_s`."""
    schedule = settings.VAR_DIR / "celery" / "beat-schedule"  # with the other state, not in the cwd
    schedule.parent.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "healthhash",
            "worker",
            "-B",
            *WORKER_OPTIONS,
            "-s",
            str(schedule),
        ],
        start_new_session=True,  # Ctrl-C reaches us, not it: we stop it, in order
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker, beat and the pool's children
            worker.wait()
