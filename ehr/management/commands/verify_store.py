"""`manage.py verify_store [--repair-from URL] [--skip-anchors]`: check that the content store holds every
record's blob, unaltered and matching its anchor, and list blobs no row names (ehr.store_check).

Prints a table of findings, then one JSON line with the counts. Exit status: 0 all good (repairs
included), 1 anything wrong, 2 the store could not be read at all.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ehr.storage import StorageUnavailable
from ehr.store_check import RepairUnsupported, StoreReport, check_store

_COLUMNS = ("kind", "subject", "cid", "detail")


class Command(BaseCommand):
    help = "Verify every record's blob (present, matching its digest and anchor) and list orphan blobs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--repair-from",
            metavar="URL",
            help="Kubo RPC API URL to fetch missing blobs from (verified against CID and digest)",
        )
        parser.add_argument(
            "--skip-anchors", action="store_true", help="do not read the anchored roots from the chain"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = check_store(anchors=not options["skip_anchors"], repair_from=options["repair_from"])
        except RepairUnsupported as exc:
            raise CommandError(str(exc)) from exc
        except StorageUnavailable as exc:
            self.stderr.write(f"the content store cannot be used: {exc}")
            self.stdout.write(json.dumps({"status": "store_unavailable", "reason": type(exc).__name__}))
            sys.exit(2)
        self._table(report)
        self.stdout.write(json.dumps(report.summary(), sort_keys=True))
        if not report.ok:
            sys.exit(1)

    def _table(self, report: StoreReport) -> None:
        rows = [(f.kind, f.subject, f.cid or "-", f.detail) for f in report.findings]
        if not rows:
            self.stdout.write(
                f"{report.records_checked} records checked: every blob present and matching; no orphans"
            )
            return
        widths = [max(len(str(r[i])) for r in [_COLUMNS, *rows]) for i in range(3)]
        for row in [_COLUMNS, *rows]:
            cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[3]]).rstrip())
