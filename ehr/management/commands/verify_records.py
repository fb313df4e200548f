"""`manage.py verify_records`: check every anchored record against the Merkle root read from the chain, and
report the records not anchored yet with their age; exit 1 on any problem. `verify_audit` runs the same
check after the access log's."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from ehr.anchor_verify import verify_records


class Command(BaseCommand):
    help = "Verify each anchored record's Merkle proof against the root on chain; report unanchored records."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_records()
        for problem in report.problems:
            self.stderr.write(problem)
        self.stdout.write(
            f"{report.records_checked} records in {report.batches_checked} anchored batches checked against "
            f"the chain: {'OK' if report.ok else f'{len(report.problems)} PROBLEMS'}"
        )
        self.stdout.write(report.unanchored_line())
        if not report.ok:
            sys.exit(1)
