"""`manage.py ipfs_push --to URL`: copy every object of the local store to a Kubo node and verify the CIDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ehr.storage import KuboStore, LocalBlockStore, StorageUnavailable, push_all


class Command(BaseCommand):
    help = "Push every stored record blob to a Kubo node (its RPC API URL) and check each CID."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--to", required=True, help="Kubo RPC API URL, e.g. http://127.0.0.1:5001")

    def handle(self, *args: Any, **options: Any) -> None:
        local = LocalBlockStore(Path(settings.IPFS_LOCAL_DIR), cid_version=settings.IPFS_CID_VERSION)
        try:
            report = push_all(local, KuboStore(options["to"]))
        except StorageUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"pushed {len(report.pushed)}, already there {len(report.already_present)}, "
            f"failed {len(report.failed)}"
        )
        for cid, reason in report.failed.items():
            self.stderr.write(f"  {cid}: {reason}")
        if not report.ok:
            raise CommandError("some objects failed to push or verify")
