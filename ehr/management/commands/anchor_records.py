"""`manage.py anchor_records [--max-records N] [--wait]`: batch every record not yet anchored, one Merkle root
per batch, queued through the outbox; --wait relays and indexes inline until the roots are on chain."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from ehr.anchoring import anchor_all_records


class Command(BaseCommand):
    help = "Anchor the records waiting for an anchor, as Merkle roots of batches (via the outbox)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--max-records", type=int, default=None, help="records per batch at most")
        parser.add_argument(
            "--wait", action="store_true", help="Relay and index inline until the roots are on chain."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batches = anchor_all_records(max_records=options["max_records"] or settings.RECORD_ANCHOR_BATCH_MAX)
        if not batches:
            self.stdout.write("no record waits for an anchor")
            return
        records = sum(batch.record_count for batch in batches)
        self.stdout.write(f"{len(batches)} batches queued over {records} records")
        if options["wait"]:
            from contracts.drain import drain_outbox

            drain_outbox()
            for batch in batches:
                batch.refresh_from_db()
                self.stdout.write(
                    f"batch {batch.batch_id}: {batch.record_count} records, {batch.status} "
                    f"in block {batch.anchored_block}"
                )
