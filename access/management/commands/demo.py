"""`manage.py demo` (what `make demo` runs): chain, contracts, demo data, the narrated consent scenario,
then the API on 127.0.0.1:8000 with a Celery worker (relayer + indexer on beat) beside it."""
from __future__ import annotations

import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from access import demo_data
from access.demo_scenario import run_consent_scenario
from contracts import client


class Command(BaseCommand):
    help = "Run the HealthHash demo on the embedded stack, then serve the API."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Stop after the scenario.")
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        say = self.stdout.write
        call_command("migrate", verbosity=0)
        if not settings.ETH_RPC_URL:
            say(f"chain: the project's own anvil at {client.ensure_dev_chain()} (state in {settings.DEV_CHAIN_STATE})")
        call_command("seed_demo")
        world = demo_data.create_people(demo_data.demo_password())
        say("")
        run_consent_scenario(world, say)
        if options["no_serve"]:
            return
        say(f"\nServing the API on http://{options['addr']}/api/ (OpenAPI: /api/schema/). Ctrl-C stops.")
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "celery", "-A", "healthhash", "worker", "-B", "--concurrency", "1",
             "--loglevel", "warning"],
        )
        try:
            call_command("runserver", options["addr"], use_reloader=False)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
