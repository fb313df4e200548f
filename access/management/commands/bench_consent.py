"""`manage.py bench_consent [--quick]`: consent gas, throughput and latency; a table, then one JSON line."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from access.bench_consent import run_benchmark

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
        parser.add_argument("--quick", action="store_true", help="10^5 consents and fewer grants.")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = run_benchmark(quick=options["quick"], say=lambda line: self.stderr.write(line))
        self.stdout.write(f"{'figure':34} {'value':>14}  target")
        for name, value in figures.items():
            target = TARGETS.get(name)
            verdict = ""
            if target is not None and isinstance(value, int | float):
                op, bound = target
                met = value <= bound if op == "<=" else value >= bound
                verdict = f"{op} {bound:,}  {'ok' if met else 'MISSED'}"
            shown = f"{value:,}" if isinstance(value, int | float) else str(value)
            self.stdout.write(f"{name:34} {shown:>14}  {verdict}")
        self.stdout.write(json.dumps(figures))
