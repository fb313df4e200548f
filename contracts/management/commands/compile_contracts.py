"""`manage.py compile_contracts [--check]`: writes contracts/build/*.json; --check fails when stale."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from contracts import compiler


class Command(BaseCommand):
    help = "Compile contracts/src/*.sol into contracts/build/<Name>.json (Standard JSON, pinned solc)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="exit 1 if the artifacts are stale; no compile"
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        if check:
            if compiler.artifacts_are_stale():
                self.stderr.write("contracts/build is stale: run `manage.py compile_contracts`")
                sys.exit(1)
            self.stdout.write("contracts/build is fresh")
            return
        for path in compiler.write_artifacts():
            self.stdout.write(f"wrote {path}")
