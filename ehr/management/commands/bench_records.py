"""`manage.py bench_records [--quick]`: record sealing, storage, open latency and import rate; a table,
then one JSON line."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from ehr.bench_records import run_benchmark

TARGETS = {
    "seal_vs_openssl": (">=", 0.9),
    "store_add_vs_sha256": (">=", 0.5),
    "open_record_p50_ms": ("<=", 5.0),
    "open_record_p99_ms": ("<=", 20.0),
    "import_records_per_s": (">=", 1_000),
    "audit_verify_entries_per_s": (">=", 100_000),
}


class Command(BaseCommand):
    help = "Benchmark records: seal vs OpenSSL, store add vs SHA-256, open p50/p99, import/s, audit verify/s."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quick", action="store_true", help="10^4 records present instead of 10^5.")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = run_benchmark(quick=options["quick"], say=lambda line: self.stderr.write(line))
        self.stdout.write(f"{'figure':30} {'value':>14}  target")
        for name, value in figures.items():
            target = TARGETS.get(name)
            verdict = ""
            if target is not None and isinstance(value, int | float):
                op, bound = target
                met = value <= bound if op == "<=" else value >= bound
                verdict = f"{op} {bound:,}  {'ok' if met else 'MISSED'}"
            shown = f"{value:,}" if isinstance(value, int | float) else str(value)
            self.stdout.write(f"{name:30} {shown:>14}  {verdict}")
        self.stdout.write(json.dumps(figures))
