"""`manage.py rotate_kek`: rewrap every secret sealed under the key-encryption keys under the active one.

That is every column registered with healthhash.key_rotation: record data keys, users' and hospitals'
managed Ethereum keys. To rotate: `manage.py rotate_kek --new-key-id k2` prints a fresh entry; put it
FIRST in HEALTHHASH_KEK (keep the old entries), restart the app, run `manage.py rotate_kek`. It ends
with how many rows remain under each old key id and fails (exit 1) while any do; drop an old entry only
after a run that says "done". `--status` only counts. Content and CIDs are not touched; requests keep
being served throughout.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ehr import keys
from healthhash.errors import DomainError
from healthhash.key_rotation import RotationReport
from healthhash.sealing import new_kek_entry

_MAX_FAILURES_LISTED = 20


class Command(BaseCommand):
    help = "Rewrap every KEK-sealed secret (record data keys, managed keys) under the active KEK."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--new-key-id", help="only print a fresh 'kid:base64key' entry to add to the ring"
        )
        parser.add_argument(
            "--status", action="store_true", help="only count the rows sealed under each key id"
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key_id"]:
            self.stdout.write(new_kek_entry(options["new_key_id"]))
            return
        try:
            if options["status"]:
                self._status()
                return
            report = keys.rotate_kek(
                batch_size=options["batch_size"], say=lambda line: self.stderr.write(line)
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self._summary(report)

    def _status(self) -> None:
        active = keys.key_ring().active_kid
        for label, counts in keys.kek_census().items():
            self.stdout.write(f"{label}: {_by_kid(counts, active=active)}")

    def _summary(self, report: RotationReport) -> None:
        self.stdout.write(
            f"active key {report.active_kid}: {report.rewrapped} rewrapped, "
            f"{report.already_current} already current, {len(report.failed)} failed"
        )
        for column in report.columns:
            self.stdout.write(
                f"  {column.label}: {column.rewrapped} rewrapped, {column.already_current} already current, "
                f"{len(column.failed)} failed, still under old keys: {_by_kid(column.remaining)}"
            )
        for row, reason in list(report.failed.items())[:_MAX_FAILURES_LISTED]:
            self.stderr.write(f"  {row}: {reason}")
        if len(report.failed) > _MAX_FAILURES_LISTED:
            self.stderr.write(f"  ... and {len(report.failed) - _MAX_FAILURES_LISTED} more")
        if not report.done:
            raise CommandError(
                f"NOT done: {_by_kid(report.remaining)} still sealed under old keys; keep those key ids "
                "in HEALTHHASH_KEK, fix the failures above (a missing KEK, or tampering) and run again"
            )
        self.stdout.write(
            f"done: every sealed secret is under {report.active_kid}; old key ids may be retired"
        )


def _by_kid(counts: Counter[str], *, active: str | None = None) -> str:
    if not counts:
        return "none"
    marked = (f"{kid}{' (active)' if kid == active else ''}: {n}" for kid, n in sorted(counts.items()))
    return ", ".join(marked)
