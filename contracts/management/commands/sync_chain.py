"""`manage.py sync_chain [--follow]`: index the project contracts' events (once, or in a loop)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts import client, indexer


class Command(BaseCommand):
    help = "Index contract events from the cursor to head - CHAIN_CONFIRMATIONS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--follow", action="store_true", help="keep following the chain")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between passes with --follow"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            try:
                report = indexer.sync_chain()
                if report.ranges or report.reorg_fork is not None or not options["follow"]:
                    self.stdout.write(
                        f"blocks {report.from_block}..{report.to_block} (head {report.head}): "
                        f"{report.new_events} new events in {report.seconds:.2f}s"
                        + (
                            f"; re-org from block {report.reorg_fork}"
                            if report.reorg_fork is not None
                            else ""
                        )
                    )
            except client.ChainUnavailable as exc:
                if not options["follow"]:
                    # A one-off run that indexed nothing must not look like a success to a script.
                    raise CommandError(str(exc)) from exc
                self.stderr.write(str(exc))
            if not options["follow"]:
                return
            time.sleep(options["interval"])
