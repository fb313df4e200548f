"""What the Directory commands share: the acting admin and the passwords (from the environment or a
prompt, never from a flag that would end up in shell history), domain errors as CommandErrors, and
`--wait` (relay and index inline, for a deployment without a worker)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError

from access.identity.directory_status import DirectoryStatus
from access.models import User
from healthhash.errors import DomainError

ADMIN_PASSWORD_ENV = "HEALTHHASH_ADMIN_PASSWORD"  # noqa: S105 - a variable name
NEW_PASSWORD_ENV = "HEALTHHASH_NEW_USER_PASSWORD"  # noqa: S105 - a variable name

T = TypeVar("T")


def add_common_arguments(parser: Any, *, actor_help: str) -> None:
    parser.add_argument(
        "--actor",
        required=True,
        help=f"{actor_help} (username); password from ${ADMIN_PASSWORD_ENV} or a prompt.",
    )
    parser.add_argument(
        "--wait", action="store_true", help="Relay and index inline until the action is on chain."
    )


def actor_named(username: str) -> User:
    actor = User.objects.filter(username=username).first()
    if actor is None:
        raise CommandError(f"no user {username!r}")
    return actor


def secret(env_name: str, prompt: str, *, confirm: bool = False) -> str:
    """A password from `env_name`, else asked on the terminal (twice when `confirm`)."""
    value = os.environ.get(env_name)
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError(f"set {env_name} or run this command on a terminal to be asked for the password")
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != value:
        raise CommandError("the passwords differ")
    return value


def run(call: Callable[[], T]) -> T:
    """Call a service; a domain error (wrong password, taken name, ...) becomes the command's error."""
    try:
        return call()
    except DomainError as exc:
        raise CommandError(f"{exc.code}: {exc.detail}") from None


def report(command: BaseCommand, *, what: str, wait: bool, status_of: Callable[[], DirectoryStatus]) -> None:
    """Say where the entry stands; with `wait`, drive the outbox to the chain first."""
    if wait:
        from contracts.drain import drain_outbox

        drain_outbox()
    current = status_of()
    action = f" (outbox item {current.action.id}: {current.action.status})" if current.action else ""
    command.stdout.write(f"{what}: {current.status}{action}")
