"""`manage.py deactivate_hospital --actor CADMIN --slug SLUG [--wait]`: deactivate a hospital in the
chain's Directory, signed by the consortium admin."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.identity import directory
from access.identity.directory_status import hospital_status
from access.management.commands import _directory_cli as cli
from access.models import Hospital


class Command(BaseCommand):
    help = "Deactivate a hospital in the Directory (as the consortium admin)."

    def add_arguments(self, parser: Any) -> None:
        cli.add_common_arguments(parser, actor_help="The consortium admin")
        parser.add_argument("--slug", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli.actor_named(options["actor"])
        hospital = Hospital.objects.filter(slug=options["slug"]).first()
        if hospital is None:
            raise CommandError(f"no hospital {options['slug']!r}")
        password = cli.secret(cli.ADMIN_PASSWORD_ENV, f"Password of {actor.username}: ")
        cli.run(
            lambda: directory.request_hospital_deactivation(hospital=hospital, actor=actor, password=password)
        )
        cli.report(
            self,
            what=f"hospital {hospital.slug}",
            wait=options["wait"],
            status_of=lambda: hospital_status(Hospital.objects.get(pk=hospital.pk)),
        )
