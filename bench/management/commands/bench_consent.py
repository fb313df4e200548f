"""`manage.py bench_consent [--quick | --smoke]`: consent gas, throughput, latency; a table, one JSON line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.consent import run_benchmark
from bench.report import report_figures

TARGETS = {
    "gas_grant_single": ("<=", 70_000),
    "gas_grant_batched_per_item": ("<=", 36_000),
    "gas_revoke_batched_per_item": ("<=", 16_000),
    "relayed_grants_per_s": (">=", 1_000),
    "check_p99_ms": ("<=", 1.0),
    "check_speedup_vs_eth_call_p50": (">=", 10),
    "indexer_events_per_s": (">=", 5_000),
}


class Command(BaseCommand):
    help = "Benchmark consent: gas, relayed grants/s, check latency vs eth_call, indexer events/s."

    def add_arguments(self, parser: Any) -> None:
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--quick", action="store_true", help="10^5 consents and fewer grants.")
        size.add_argument(
            "--smoke", action="store_true", help="5,000 consents, 100 grants: checks that it runs, not speed."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        size = "smoke" if options["smoke"] else "quick" if options["quick"] else "full"
        figures = run_benchmark(size=size, say=lambda line: self.stderr.write(line))
        report_figures(self.stdout.write, figures, TARGETS)
