"""`manage.py anchor_audit [--wait]`: queue one Merkle root over the changed access-log heads."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from access.audit.anchoring import MAX_HEADS_PER_BATCH, anchor_audit_heads


class Command(BaseCommand):
    help = "Anchor the access-log heads changed since the last batch (one root per batch, via the outbox)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--max-heads", type=int, default=MAX_HEADS_PER_BATCH)
        parser.add_argument(
            "--wait", action="store_true", help="Relay and index inline until it is on chain."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch = anchor_audit_heads(max_heads=options["max_heads"])
        if batch is None:
            self.stdout.write("no access-log head changed since the last batch")
            return
        self.stdout.write(f"batch {batch.batch_id}: root {batch.root} over {batch.head_count} heads, queued")
        if options["wait"]:
            from contracts.drain import drain_outbox

            drain_outbox()
            batch.refresh_from_db()
            self.stdout.write(f"batch {batch.batch_id}: {batch.status} in block {batch.anchored_block}")
