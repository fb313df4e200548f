"""`manage.py create_patient --username NAME [--email E]`: sign a patient up with a password (from
$HEALTHHASH_NEW_USER_PASSWORD or a prompt) and a managed key. Patients have no Directory entry, so
nothing goes to the chain. (A wallet patient signs up themselves, by Sign-In with Ethereum.)"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from access.identity import services as identity_services
from access.management.commands import _directory_cli as cli


class Command(BaseCommand):
    help = "Create a patient with a password and a managed key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        password = cli.secret(cli.NEW_PASSWORD_ENV, f"New password for {options['username']}: ", confirm=True)
        user = cli.run(
            lambda: identity_services.sign_up_patient(
                username=options["username"], password=password, email=options["email"]
            )
        )
        self.stdout.write(f"patient {user.username}: {user.eth_address} (managed key)")
