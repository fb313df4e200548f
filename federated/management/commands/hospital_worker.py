"""`manage.py hospital_worker --hospital SLUG --key-file FILE`: a hospital's data-holder worker.

A Celery worker (the healthhash app, its broker from CELERY_BROKER_URL) that consumes only the queue
`hospital.SLUG` and runs `federated.worker.local_round`. It needs the broker, the API (--api-url), the
content store (IPFS_API_URL, else the local store in --store-dir), the chain node (ETH_RPC_URL) and the
hospital account's key (--key-file, owner-only, as `export_hospital_key` writes it). It needs no database
credentials and never the KEK, and touches neither: it refuses to start when its key is not the
hospital's account or its chain is not the API's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from celery.signals import worker_process_init
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# federated.worker.tasks registers federated.worker.local_round with the app (autodiscovery finds only
# <app>.tasks modules).
from federated.worker import runtime, tasks
from healthhash.celery import app

log = logging.getLogger(__name__)

POOLS = ("solo", "prefork")


class Command(BaseCommand):
    help = "Run a hospital's training worker: a Celery worker on the queue hospital.SLUG (no database)."
    # No system checks: some would open a database connection, and this process has none.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--hospital", required=True, help="The hospital's slug.")
        parser.add_argument(
            "--key-file", required=True, type=Path, help="The hospital account key (hex, 0600)."
        )
        parser.add_argument(
            "--api-url", default="http://127.0.0.1:8000", help="The HealthHash API's base URL."
        )
        parser.add_argument(
            "--state-dir", type=Path, help="Privacy ledger and state (default: VAR_DIR/hospital-worker/SLUG)."
        )
        parser.add_argument(
            "--store-dir",
            type=Path,
            help="The local content store when IPFS_API_URL is empty (default: the server's, VAR_DIR/ipfs).",
        )
        parser.add_argument("--concurrency", type=int, default=1, help="Worker processes (default 1).")
        parser.add_argument("--pool", choices=POOLS, help="solo (default for one process) or prefork.")
        parser.add_argument(
            "--epsilon-budget",
            type=float,
            default=runtime.DEFAULT_EPSILON_BUDGET,
            help="The hospital's total privacy budget ε over all jobs.",
        )
        parser.add_argument(
            "--delta", type=float, default=runtime.DEFAULT_DELTA, help="The δ of the hospital's budget."
        )
        parser.add_argument(
            "--wait-for-api", type=float, default=30.0, help="Seconds to wait for the API at start."
        )
        parser.add_argument("--loglevel", default="info")

    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["hospital"]
        concurrency: int = options["concurrency"]
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        pool = options["pool"] or ("solo" if concurrency == 1 else "prefork")
        if pool == "solo" and concurrency != 1:
            raise CommandError(
                "the solo pool runs one task at a time: use --pool prefork for --concurrency > 1"
            )
        try:
            # Path() again: call_command passes optional arguments through without their argparse type.
            account = runtime.read_key_file(Path(options["key_file"]))
            worker = runtime.connect_worker(
                slug=slug,
                account=account,
                api_url=options["api_url"],
                state_dir=Path(options["state_dir"] or Path(settings.VAR_DIR) / "hospital-worker" / slug),
                store_dir=Path(options["store_dir"] or settings.IPFS_LOCAL_DIR),
                ipfs_api_url=settings.IPFS_API_URL,
                epsilon_budget=options["epsilon_budget"],
                delta=options["delta"],
                wait_for_api_s=options["wait_for_api"],
            )
        except runtime.WorkerStartRefused as exc:
            raise CommandError(f"hospital worker for {slug} not started: {exc}") from exc
        runtime.limit_torch_threads()
        runtime.warm_up_torch()  # before a prefork pool forks: the children inherit it
        runtime.install(worker)
        assert tasks.TASK_NAME in app.tasks
        worker_process_init.connect(_child_init, weak=False)
        self.stdout.write(
            f"hospital worker for {slug} (account {account.address}, chain {worker.chain_id}) "
            f"on queue hospital.{slug}, pool {pool} x{concurrency}"
        )
        app.worker_main(
            [
                "worker",
                "--queues",
                f"hospital.{slug}",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"hospital-{slug}@%h",
                "--loglevel",
                options["loglevel"],
                # No broadcast chatter: the embedded broker has no fanout, and a worker needs none.
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )


def _child_init(**_: Any) -> None:
    """A prefork child: its own single torch thread (the worker and its cache are inherited)."""
    runtime.limit_torch_threads()
