"""`manage.py demo` (what `make demo` runs): chain, contracts, demo consortium and charts, the narrated
story, then the API on 127.0.0.1:8000 with a Celery worker (relayer, indexer, audit anchoring) beside it."""

from __future__ import annotations

import signal
import subprocess
import sys
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
        # Ctrl-C and a plain `kill` both end the demo through the finally below: the worker and the dev
        # chain stop with it. (A background job of a non-interactive shell starts with SIGINT ignored.)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self._run(options)
        finally:
            # A dev chain this process started stops with it (anvil dumps its state on the way out);
            # the next `make demo` loads that state and finds everything where it was.
            client.stop_dev_chain()

    def _run(self, options: dict[str, Any]) -> None:
        say = self.stdout.write
        call_command("migrate", verbosity=0)
        if not settings.ETH_RPC_URL:
            url = client.ensure_dev_chain()
            say(f"chain: the project's own anvil at {url} (state in {settings.DEV_CHAIN_STATE})")
        call_command("seed_demo")
        world = demo_data.create_people(demo_data.demo_password())
        say("")
        run_story(world, say)
        if options["no_serve"]:
            return
        say(f"\nServing the API on http://{options['addr']}/api/ (OpenAPI: /api/schema/). Ctrl-C stops.")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "healthhash",
                "worker",
                "-B",
                "--concurrency",
                "1",
                "--loglevel",
                "warning",
            ],
        )
        try:
            call_command("runserver", options["addr"], use_reloader=False)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
