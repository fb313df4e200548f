"""`manage.py create_hospital --actor CADMIN --slug SLUG --name NAME --admin USER [--new-admin] [--wait]`:
create a hospital and register it in the chain's Directory, signed by the consortium admin."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from access.identity import directory
from access.identity.directory_status import hospital_status
from access.management.commands import _directory_cli as cli
from access.models import Hospital


class Command(BaseCommand):
    help = "Create a hospital and register it in the Directory (as the consortium admin)."

    def add_arguments(self, parser: Any) -> None:
        cli.add_common_arguments(parser, actor_help="The consortium admin")
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, help="The hospital's admin (username).")
        parser.add_argument(
            "--new-admin",
            action="store_true",
            help=f"Create the admin as a new user; password from ${cli.NEW_PASSWORD_ENV} or a prompt.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli.actor_named(options["actor"])
        password = cli.secret(cli.ADMIN_PASSWORD_ENV, f"Password of {actor.username}: ")
        admin_password = ""
        if options["new_admin"]:
            admin_password = cli.secret(
                cli.NEW_PASSWORD_ENV, f"New password for {options['admin']}: ", confirm=True
            )
        hospital, _ = cli.run(
            lambda: directory.create_and_register_hospital(
                actor=actor,
                password=password,
                slug=options["slug"],
                name=options["name"],
                admin_username=options["admin"],
                admin_password=admin_password,
            )
        )
        cli.report(
            self,
            what=f"hospital {hospital.slug}",
            wait=options["wait"],
            status_of=lambda: hospital_status(Hospital.objects.get(pk=hospital.pk)),
        )
