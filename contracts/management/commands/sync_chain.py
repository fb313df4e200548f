"""`manage.py sync_chain [--follow]`: index the project contracts' events (once, or in a loop).
`manage.py sync_chain --rebuild [--from-block N]`: replay the chain through the handlers again
(contracts/rebuild.py), keeping what only the database knows.

On a node that is not the chain the contracts were deployed on it indexes nothing and says why (a
one-off run exits 1; --follow waits for the right chain): indexing another chain would drop every event
as if re-orged away."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts import chain_identity, client, indexer, lease, rebuild


class Command(BaseCommand):
    help = "Index contract events from the cursor to head - CHAIN_CONFIRMATIONS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--follow", action="store_true", help="keep following the chain")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between passes with --follow"
        )
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="drop the indexed events and replay the chain through the handlers (one transaction)",
        )
        parser.add_argument(
            "--from-block", type=int, default=None, help="with --rebuild: replay from this block on"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rebuild"]:
            self._rebuild(options["from_block"])
            if not options["follow"]:
                return
        elif options["from_block"] is not None:
            raise CommandError("--from-block goes with --rebuild")
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

    def _rebuild(self, from_block: int | None) -> None:
        try:
            report = rebuild.rebuild(from_block=from_block)
        except chain_identity.WrongChain as exc:
            raise CommandError(exc.detail) from exc
        except (client.ChainUnavailable, rebuild.NothingToRebuild, indexer.ChainMovedDuringReplay) as exc:
            raise CommandError(str(exc)) from exc
        except lease.RelayerBusy as exc:
            raise CommandError(f"{exc}; stop the relayer (or wait for its run) and rebuild again") from exc
        self.stdout.write(
            f"rebuilt from block {report.from_block} to head {report.head}: "
            f"{report.dropped_events} stored events dropped, {report.replayed_events} replayed "
            f"in {report.seconds:.2f}s"
        )
