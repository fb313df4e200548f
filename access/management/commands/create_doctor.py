"""`manage.py create_doctor --actor HADMIN --username NAME [--eth-address ADDR] [--hospital SLUG] [--wait]`:
create a doctor's account and register it in the chain's Directory, signed by the hospital's admin.

Without `--eth-address` the doctor gets a password (from $HEALTHHASH_NEW_USER_PASSWORD or a prompt)
and a managed key; with it the doctor signs with that wallet (and gets a password only if the
variable is set)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.identity import directory
from access.identity.directory_status import doctor_status
from access.management.commands import _directory_cli as cli
from access.models import Doctor, Hospital


class Command(BaseCommand):
    help = "Create a doctor and register them in the Directory (as the hospital's admin)."

    def add_arguments(self, parser: Any) -> None:
        cli.add_common_arguments(parser, actor_help="The hospital's admin")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--eth-address", default="", help="The doctor's own wallet address.")
        parser.add_argument("--hospital", default="", help="The hospital's slug (default: the admin's own).")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli.actor_named(options["actor"])
        hospital = actor.hospital
        if options["hospital"]:
            hospital = Hospital.objects.filter(slug=options["hospital"]).first()
        if hospital is None:
            raise CommandError(f"{actor.username} runs no hospital; name one with --hospital")
        password = cli.secret(cli.ADMIN_PASSWORD_ENV, f"Password of {actor.username}: ")
        if options["eth_address"]:
            doctor_password = os.environ.get(cli.NEW_PASSWORD_ENV, "")
        else:
            doctor_password = cli.secret(
                cli.NEW_PASSWORD_ENV, f"New password for {options['username']}: ", confirm=True
            )
        doctor, _ = cli.run(
            lambda: directory.create_and_register_doctor(
                actor=actor,
                password=password,
                hospital=hospital,
                username=options["username"],
                doctor_password=doctor_password,
                eth_address=options["eth_address"],
                email=options["email"],
            )
        )
        cli.report(
            self,
            what=f"doctor {doctor.user.username} (id {doctor.pk}) at {hospital.slug}",
            wait=options["wait"],
            status_of=lambda: doctor_status(
                Doctor.objects.select_related("user", "hospital").get(pk=doctor.pk)
            ),
        )
