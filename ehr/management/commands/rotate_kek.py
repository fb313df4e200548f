"""`manage.py rotate_kek`: rewrap every record's data key under the active key-encryption key.

To rotate: `manage.py rotate_kek --new-key-id k2` prints a fresh entry; put it FIRST in HEALTHHASH_KEK
(keep the old entries), restart the app, run `manage.py rotate_kek`, then drop the old entries.
Content and CIDs are not touched; requests keep being served throughout.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ehr import keys
from healthhash.errors import DomainError
from healthhash.sealing import new_kek_entry


class Command(BaseCommand):
    help = "Rewrap all record data keys under the active KEK (the first in HEALTHHASH_KEK)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--new-key-id", help="only print a fresh 'kid:base64key' entry to add to the ring"
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key_id"]:
            self.stdout.write(new_kek_entry(options["new_key_id"]))
            return
        try:
            report = keys.rotate_kek(
                batch_size=options["batch_size"], say=lambda line: self.stderr.write(line)
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"active key {report.active_kid}: {report.rewrapped} rewrapped, "
            f"{report.already_current} already current, {len(report.failed)} failed"
        )
        for record_id, reason in report.failed.items():
            self.stderr.write(f"  {record_id}: {reason}")
        if report.failed:
            raise CommandError(
                "some data keys could not be rewrapped (their KEK is missing or they fail authentication)"
            )
