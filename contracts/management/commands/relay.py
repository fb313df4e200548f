"""`manage.py relay [--follow]`: send queued outbox items to the chain (once, or in a loop).

Only one relayer works at a time (the lease in contracts/lease.py); a second one waits, logging who holds
the lease and until when, and takes over within seconds if the holder dies.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts import relayer


class Command(BaseCommand):
    help = "Relay pending outbox items and confirm in-flight transactions."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--follow", action="store_true", help="keep relaying")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between runs with --follow")

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM ends the run through its `finally`, which gives the lease back at once; a signed
        # transaction it did not broadcast yet is re-sent by the next run (same bytes, same hash).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            report = relayer.relay_once()
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
