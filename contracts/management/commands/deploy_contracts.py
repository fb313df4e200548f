"""`manage.py deploy_contracts [--consortium-admin 0x..]`: deploy what is missing or stale (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from contracts.deploy import DeployError, deploy_contracts


class Command(BaseCommand):
    help = "Deploy Directory, ConsentRegistry and Anchors on the current chain if missing or stale."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--consortium-admin", help="address of the consortium admin (Directory owner)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # The summary below says it all; the per-contract log line would repeat it.
            results = deploy_contracts(consortium_admin=options["consortium_admin"], say=lambda _: None)
        except DeployError as exc:
            raise CommandError(exc.detail) from exc
        for result in results:
            self.stdout.write(result.summary())
