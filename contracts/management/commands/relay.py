"""`manage.py relay [--follow] [--retry-failed CODE]`: send queued outbox items to the chain (once, or in
a loop). On a node that is not the chain the contracts were deployed on it sends nothing and says why
(a one-off run exits 1; with --follow it waits for the right chain).

Only one relayer works at a time (the lease in contracts/lease.py); a second one waits, logging who holds
the lease and until when, and takes over within seconds if the holder dies.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts import outbox, relayer
from contracts.models import OutboxItem


class Command(BaseCommand):
    help = "Relay pending outbox items and confirm in-flight transactions."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--follow", action="store_true", help="keep relaying")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between runs with --follow")
        parser.add_argument(
            "--retry-failed",
            metavar="CODE",
            help="first queue again the failed items with this error code ('all' for every failed item)",
        )

    def _retry_failed(self, code: str) -> None:
        failed = OutboxItem.objects.filter(status=OutboxItem.Status.FAILED)
        if code != "all":
            failed = failed.filter(error_code=code)
        count = outbox.requeue_failed(list(failed.values_list("pk", flat=True)))
        self.stdout.write(f"queued {count} failed items again")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry_failed"]:
            self._retry_failed(options["retry_failed"])
        # SIGTERM ends the run through its `finally`, which gives the lease back at once; a signed
        # transaction it did not broadcast yet is re-sent by the next run (same bytes, same hash).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        told = ""
        while True:
            report = relayer.relay_once()
            if report.wrong_chain:
                # Nothing is sent to another chain. A one-off run fails; --follow stays up, sending
                # nothing, and carries on once the node is the right one again (or contracts redeployed).
                if not options["follow"]:
                    raise CommandError(report.wrong_chain)
                if report.wrong_chain != told:
                    self.stderr.write(report.wrong_chain)
                told = report.wrong_chain
                time.sleep(options["interval"])
                continue
            told = ""
            if report.items_claimed or report.rebroadcast or report.unavailable or not options["follow"]:
                state = "chain unavailable" if report.unavailable else "busy" if report.busy else "ok"
                self.stdout.write(
                    f"{state}: {report.items_claimed} items, {report.txs_sent} txs, "
                    f"{report.confirmed} confirmed, {report.failed} failed, {report.rebroadcast} re-sent, "
                    f"{report.waiting_txs} waiting ({report.seconds:.2f}s)"
                )
            if not options["follow"]:
                if report.unavailable:
                    # Items stay queued; a one-off run that reached no node must not look like success.
                    raise CommandError("no chain node answered; the outbox items stay queued")
                return
            if not report.items_claimed:  # busy: go again at once; idle: wait a little
                time.sleep(options["interval"])
