"""`manage.py bench_federated [--quick]`: issue 14's figures in a table, then one JSON line.

- `fedavg_f1` vs `central_f1`, `rounds_to_within_1pt` (bench/federated_quality.py, in process);
- `round_overhead_ms` on Redis and `round_overhead_ms_embedded` on the embedded broker
  (bench/federated_stack.py: the production shape with 5 hospital worker processes, each run in a child
  process with its own state);
- `dataset_records_per_s` (bench/federated_release.py), `aggregate_gbps` (bench/federated.py);
- `gas_update`, `gas_model_version` (bench/gas_report.py, on a fresh anvil).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from django.core.management.base import BaseCommand
from web3 import Web3

from bench import federated_release, federated_stack
from bench.federated import measure_aggregate_gbps
from bench.federated_quality import measure_quality
from bench.gas_report import measure_deploy_gas, measure_training_gas
from bench.report import report_figures
from contracts.node import start_anvil
from demo.signals import stop_once

TARGETS = {
    "f1_gap_pt": ("<=", 1.0),
    "rounds_to_within_1pt": ("<=", 30),
    "round_overhead_ms": ("<=", 100.0),
    "round_overhead_ms_embedded": ("<=", 250.0),
    "dataset_records_per_s": (">=", 10_000.0),
    "aggregate_gbps": (">=", 1.0),
    "gas_update": ("<=", 60_000),
    "gas_model_version": ("<=", 60_000),
}
REDIS_URL = "redis://127.0.0.1:6379/15"


class Command(BaseCommand):
    help = "Benchmark federated training: FedAvg vs central F1, round overhead (Redis, embedded), gas."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quick", action="store_true", help="3 seeds instead of 5, smaller dataset run.")
        parser.add_argument("--redis-url", default=REDIS_URL, help="the Redis broker for round_overhead_ms")
        parser.add_argument(
            "--skip-stack", action="store_true", help="leave out the two round-overhead runs (minutes)"
        )
        parser.add_argument(
            "--stack-child", action="store_true", help=f"(internal: {federated_stack.__name__})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stack_child"]:
            # A SIGTERM (the parent's timeout, a plain kill) unwinds the processes it started, as the demo's.
            signal.signal(signal.SIGTERM, stop_once)
            measured = federated_stack.measure()
            self.stdout.write(federated_stack.RESULT_PREFIX + json.dumps(measured))
            return
        say = self.stderr.write
        figures: dict[str, Any] = {}
        say("FedAvg vs central training (5 hospitals, Dirichlet(0.5))...")
        figures |= measure_quality(seeds=3 if options["quick"] else 5).figures()
        if not options["skip_stack"]:
            database_url = os.environ.get("DATABASE_URL", "")
            bench_db = _bench_database(database_url)
            say("round overhead on Redis (5 hospital worker processes)...")
            redis = federated_stack.run_in_child(broker_url=options["redis_url"], database_url=bench_db)
            figures["round_overhead_ms"] = redis["round_overhead_ms"]
            figures["round_overhead_p90_ms"] = redis["round_overhead_p90_ms"]
            figures["local_training_ms"] = redis["local_training_ms"]
            figures["round_machine_cpu_ms"] = redis["machine_cpu_per_round_ms"]
            figures["round_machine_busy_share"] = redis["machine_busy_share"]
            say("round overhead on the embedded broker...")
            embedded = federated_stack.run_in_child(broker_url="", database_url=bench_db)
            figures["round_overhead_ms_embedded"] = embedded["round_overhead_ms"]
        say("dataset release and load...")
        release = federated_release.run_benchmark(quick=options["quick"], say=say)
        figures["dataset_records_per_s"] = release["dataset_records_per_s"]
        figures |= measure_aggregate_gbps()
        node = start_anvil()
        try:
            w3 = Web3(Web3.HTTPProvider(node.rpc_url))
            _, deployed = measure_deploy_gas(w3, sender=w3.eth.accounts[0])
            relayer = w3.eth.accounts[0]
            gas = measure_training_gas(w3, deployed["Directory"], relayer=relayer)
        finally:
            node.stop()
        figures["gas_update"] = gas["gas_update"]
        figures["gas_model_version"] = gas["gas_model_version"]
        report_figures(self.stdout.write, figures, TARGETS)


def _bench_database(database_url: str) -> str | None:
    """On PostgreSQL, a database of the benchmark's own, made afresh for each run; on SQLite, None."""
    if not database_url.startswith("postgres"):
        return None  # the child's own SQLite file in its state folder
    return database_url.rsplit("/", 1)[0] + "/healthhash_bench_rounds"
