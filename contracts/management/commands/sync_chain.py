"""`manage.py sync_chain [--follow]`: index the project contracts' events (once, or in a loop).

On a node that is not the chain the contracts were deployed on it indexes nothing and says why (a
one-off run exits 1; --follow waits for the right chain): indexing another chain would drop every event
as if re-orged away."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts import chain_identity, client, indexer


class Command(BaseCommand):
    help = "Index contract events from the cursor to head - CHAIN_CONFIRMATIONS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--follow", action="store_true", help="keep following the chain")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between passes with --follow"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        told = ""  # the wrong-chain message last written, so --follow says it once, not every pass
        while True:
            try:
                report = indexer.sync_chain()
                told = ""
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
            except chain_identity.WrongChain as exc:
                # Not a re-org to follow: nothing is indexed or dropped until an operator fixes it.
                if not options["follow"]:
                    raise CommandError(exc.detail) from exc
                if exc.detail != told:
                    self.stderr.write(exc.detail)
                told = exc.detail
            except client.ChainUnavailable as exc:
                if not options["follow"]:
                    # A one-off run that indexed nothing must not look like a success to a script.
                    raise CommandError(str(exc)) from exc
                self.stderr.write(str(exc))
            if not options["follow"]:
                return
            time.sleep(options["interval"])
