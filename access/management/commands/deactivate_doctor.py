"""`manage.py deactivate_doctor --actor HADMIN --username DOCTOR [--wait]`: deactivate a doctor in the
chain's Directory, signed by the admin of the doctor's hospital."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.identity import directory
from access.identity.directory_status import doctor_status
from access.management.commands import _directory_cli as cli
from access.models import Doctor


class Command(BaseCommand):
    help = "Deactivate a doctor in the Directory (as the admin of the doctor's hospital)."

    def add_arguments(self, parser: Any) -> None:
        cli.add_common_arguments(parser, actor_help="The hospital's admin")
        parser.add_argument("--username", required=True, help="The doctor's username.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli.actor_named(options["actor"])
        doctor = (
            Doctor.objects.select_related("user", "hospital")
            .filter(user__username=options["username"])
            .first()
        )
        if doctor is None:
            raise CommandError(f"no doctor {options['username']!r}")
        password = cli.secret(cli.ADMIN_PASSWORD_ENV, f"Password of {actor.username}: ")
        cli.run(lambda: directory.request_doctor_deactivation(doctor=doctor, actor=actor, password=password))
        cli.report(
            self,
            what=f"doctor {doctor.user.username}",
            wait=options["wait"],
            status_of=lambda: doctor_status(
                Doctor.objects.select_related("user", "hospital").get(pk=doctor.pk)
            ),
        )
