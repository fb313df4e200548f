"""`manage.py collect_store_garbage [--grace-seconds S] [--force]`: reclaim the embedded store's disk.

Deletes packs no index row names (left by an add that crashed before committing, or by a removal whose
unlink was interrupted) and rewrites packs that hold dead bytes next to live blocks (a record removed
while another shared some of its blocks). Packs younger than the grace period are spared: an add in
flight has written its pack but not yet committed its index rows. When more packs are unknown to the
index than known to it, the index looks lost or replaced and nothing is deleted (exit 1) unless
`--force`: sweeping would delete every record's bytes. With Kubo (`IPFS_API_URL`), the node collects its
own garbage (`ipfs repo gc`); this command refuses.

Prints one JSON line: packs removed or rewritten, bytes on disk before and after, seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ehr import store
from ehr.storage import LocalBlockStore
from ehr.storage.blockstore import IndexLooksLost


def _bytes_on_disk(root: Path) -> int:
    return sum(path.stat().st_size for path in (root / "packs").glob("*/*") if path.is_file())


class Command(BaseCommand):
    help = "Delete unindexed packs and compact packs holding dead bytes in the embedded content store."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--grace-seconds",
            type=float,
            default=3600.0,
            help="spare packs younger than this (an add in flight); default 3600",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="sweep even when most packs are unknown to the index (the index was replaced on purpose)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backend = store.content_store()
        if not isinstance(backend, LocalBlockStore):
            raise CommandError(
                "the content store is a Kubo node (IPFS_API_URL): run its own `ipfs repo gc` instead"
            )
        if options["grace_seconds"] < 0:
            raise CommandError("--grace-seconds must be 0 or more")
        before = _bytes_on_disk(backend.root)
        started = time.perf_counter()
        try:
            packs = backend.collect_garbage(grace_seconds=options["grace_seconds"], force=options["force"])
        except IndexLooksLost as exc:
            self.stderr.write(f"{exc}; run verify_store, and pass --force only if the index was replaced")
            self.stdout.write(json.dumps({"status": "index_looks_lost", "packs_removed": 0}))
            sys.exit(1)
        summary = {
            "status": "ok",
            "packs_removed": packs,
            "bytes_before": before,
            "bytes_after": _bytes_on_disk(backend.root),
            "seconds": round(time.perf_counter() - started, 3),
        }
        self.stdout.write(json.dumps(summary, sort_keys=True))
