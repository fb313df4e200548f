"""`manage.py demo` (what `make demo` runs): chain, contracts, demo consortium and charts, the narrated
story, then the production shape (gunicorn, Celery worker with beat, relayer, indexer) on 127.0.0.1:8000, a
federated training job run by one hospital worker per hospital against it, and the API and portal served."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from contracts import client
from demo import people as demo_data
from demo.signals import stop_once
from demo.story import run_story
from demo.training import training_story


class Command(BaseCommand):
    help = "Run the HealthHash demo on the embedded stack, then serve the API."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Stop after the story.")
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        # Ctrl-C and a plain `kill` both end the demo by unwinding the `with` blocks: the worker and the
        # dev chain stop with it. (A background job of a non-interactive shell starts with SIGINT ignored.)
        signal.signal(signal.SIGINT, stop_once)
        signal.signal(signal.SIGTERM, stop_once)
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
        from demo import processes  # it imports celery_worker from this module

        say = self.stdout.write
        if options["verbosity"] < 2:  # the story is the output; -v 2 shows the log lines too
            logging.getLogger().setLevel(logging.WARNING)
        call_command("seed_demo")
        world = demo_data.create_people(demo_data.demo_password())
        say("")
        patients = run_story(world, say)
        host, _, port = options["addr"].rpartition(":")
        web = processes.WebOptions(host or "127.0.0.1", int(port), 2, 4)
        processes.child_environment(log_format="plain")
        processes.LOG_DIR = settings.VAR_DIR / "logs"  # the terminal tells the story; the servers log there
        processes.drop_chain_loops_from_beat()
        processes.release_database()
        say(
            f"\nStarting the production shape on {web.url}: gunicorn, the Celery worker, relayer, indexer "
            f"(logs in {processes.LOG_DIR})"
        )
        with processes.running_processes(web, lambda _line: None) as children:
            if not processes.wait_until_healthy(web.url, children):
                for line in processes.describe_health(web.url):
                    say(line)
            training_story(world, say, patients=patients, api_url=web.url)
            if options["no_serve"]:
                return
            say(f"\nServing the API on {web.url}/api/ (OpenAPI: /api/schema/) and the portal on {web.url}/.")
            say("Ctrl-C stops everything.")
            processes.supervise(children)


WORKER_OPTIONS = ("--concurrency", "1", "--loglevel", "warning")


@contextmanager
def celery_worker(*, stop_timeout_s: float = 20.0) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker with beat (relayer, indexer, audit anchoring) beside the API, in its own process
    group, so that stopping it also reaches beat and the pool's children: SIGTERM (a warm shutdown),
    then SIGKILL to the whole group if it has not ended in `stop_timeout_s`."""
    from demo.processes import child_output, worker_argv  # (processes imports this module)

    output = child_output("worker")
    worker = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        worker_argv(),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,  # Ctrl-C reaches us, not it: we stop it, in order
    )
    if output is not None:
        output.close()
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker, beat and the pool's children
            worker.wait()
