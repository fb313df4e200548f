"""`manage.py bench_records [--quick]`: record sealing, storage, open latency and import rate; a table,
then one JSON line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.records import run_benchmark
from bench.report import report_figures

TARGETS = {
    "seal_vs_openssl": (">=", 0.9),
    "store_add_vs_sha256": (">=", 0.5),
    "open_record_p50_ms": ("<=", 5.0),
    "open_record_p99_ms": ("<=", 20.0),
    "import_records_per_s": (">=", 1_000),
    "record_anchor_gas_per_record_100": ("<=", 1_000),
    "audit_verify_entries_per_s": (">=", 100_000),
}


class Command(BaseCommand):
    help = "Benchmark records: sealing, storage, open p50/p99, import/s, anchor gas/record, audit verify/s."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quick", action="store_true", help="10^4 records present instead of 10^5.")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = run_benchmark(quick=options["quick"], say=lambda line: self.stderr.write(line))
        report_figures(self.stdout.write, figures, TARGETS)
