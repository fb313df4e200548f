"""`manage.py verify_audit [--json]`: check every access-log chain, copied column, head and anchor (the
roots read from the chain itself), then the checks other apps registered (ehr: every anchored record's
Merkle proof against its root on chain); exit 1 on a break. Anchor breaks name the root's block and tx,
including roots on chain the database no longer knows after a restore (access/audit/verify_lost.py). NOTE
lines say what could not be checked, e.g. the entries not yet anchored."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand

from access.audit.companions import run_companion_checks
from access.audit.verify import verify_audit


class Command(BaseCommand):
    help = (
        "Verify the access log: every hash chain, every copied column, every head, every anchored Merkle "
        "root against the chain."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON line.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_audit()
        companions = run_companion_checks()
        if options["json"]:
            body = asdict(report) | {"ok": report.ok, "entries_per_s": round(report.entries_per_s)}
            body["companions"] = [{"name": n, "ok": ok, "lines": lines} for n, ok, lines in companions]
            self.stdout.write(json.dumps(body))
        else:
            for found in report.breaks:
                self.stdout.write(f"BREAK {found}")
            self.stdout.write(report.summary())
            for note in report.notes:
                self.stdout.write(f"NOTE {note}")
            for name, ok, lines in companions:
                for line in lines:
                    self.stdout.write(f"{name}: {line}" if ok else f"BREAK {name}: {line}")
        if not report.ok or not all(ok for _, ok, _ in companions):
            sys.exit(1)
