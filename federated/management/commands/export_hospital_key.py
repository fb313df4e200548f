"""`manage.py export_hospital_key --hospital SLUG --out FILE [--password-file F]`: the hospital account's
key for its worker, written once by the server's operator with the hospital admin's password.

The key is the hospital's managed key, opened through access.identity.keys.unlock_hospital_key (the
admin's password is checked, throttled and locked like every re-confirmation). It is written owner-only
(0600) to a file that must not exist yet, and never printed: only the account address is.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.identity.keys import unlock_hospital_key
from access.models import Hospital
from healthhash.errors import DomainError


class Command(BaseCommand):
    help = "Write a hospital account's private key to a new owner-only file, for its hospital worker."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--hospital", required=True, help="The hospital's slug.")
        parser.add_argument(
            "--out", required=True, type=Path, help="The key file to create (must not exist)."
        )
        parser.add_argument(
            "--password-file",
            type=Path,
            help="A file holding the hospital admin's password (first line); asked for when absent.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Path() again: call_command passes optional arguments through without their argparse type.
        out = Path(options["out"])
        hospital = Hospital.objects.select_related("admin").filter(slug=options["hospital"]).first()
        if hospital is None:
            raise CommandError(f"no hospital {options['hospital']!r}")
        if out.exists():
            raise CommandError(f"{out} exists; not overwriting a key file")
        password_file = options["password_file"]
        password = _password(
            None if password_file is None else Path(password_file), username=hospital.admin.username
        )
        try:
            account = unlock_hospital_key(hospital=hospital, user=hospital.admin, password=password)
        except DomainError as exc:
            raise CommandError(f"the hospital key was not unlocked: {exc.detail}") from exc
        try:
            # O_EXCL: a file that appeared since the check above is not overwritten either.
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{out} exists; not overwriting a key file") from None
        except OSError as exc:
            raise CommandError(f"cannot create {out}: {exc.strerror}") from exc
        with os.fdopen(descriptor, "w") as file:
            file.write("0x" + bytes(account.key).hex() + "\n")
        os.chmod(out, 0o600)  # whatever the umask did to the mode at creation
        self.stdout.write(f"wrote the key of hospital {hospital.slug} (account {account.address}) to {out}")


def _password(password_file: Path | None, *, username: str) -> str:
    if password_file is None:
        return getpass.getpass(f"Password of {username}, the hospital's admin: ")
    try:
        lines = password_file.read_text().splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {password_file}: {exc.strerror}") from exc
    return lines[0] if lines else ""
