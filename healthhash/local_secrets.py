"""Secrets for the embedded (development) stack: generated once into var/secrets, never committed.

Production supplies every secret through the environment (and refuses to start without one); this
module is only the default when a variable is unset, so a fresh clone runs with no manual step and still
has no secret in the repo. It also keeps var/ itself owner-only.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


class MissingSecret(ImproperlyConfigured):
    """A production start without a secret that development would have generated."""


def private_dir(path: Path) -> Path:
    """Create (or tighten) a folder only its owner may list or enter (0700): var/ holds the database with
    live session keys, the chain state and the sealed blobs, and nothing below it should be reachable."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode
    if mode & stat.S_ISVTX:
        return path  # a shared sticky folder such as /tmp given as the var dir: never lock others out
    try:
        if mode & 0o077:
            os.chmod(path, 0o700)
    except PermissionError:  # a folder someone else owns (a shared mount): leave it, it is theirs
        pass
    return path


def private_file(path: Path) -> Path:
    """Create an empty file readable by its owner only (0600), unless it exists; SQLite keeps the mode
    of an existing database file and gives its -wal and -shm files the same."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    return path


def require_production_secrets(names: list[str], environ: Mapping[str, str]) -> None:
    """In production every secret comes from the environment: refuse to start rather than invent one."""
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise MissingSecret(
            f"HEALTHHASH_ENV=production but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "not set. In production every secret comes from the environment; none is generated."
        )


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    private_dir(path.parent)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = make()
        # O_EXCL: two processes starting together must not overwrite each other's secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


def django_secret_key(secrets_dir: Path) -> str:
    """The Django SECRET_KEY of this checkout."""
    return _read_or_create(secrets_dir / "django_secret_key", lambda: secrets.token_urlsafe(64))


def key_encryption_keys(secrets_dir: Path) -> str:
    """The key ring ("kid:base64key,...") that wraps record data keys and managed user keys."""
    return _read_or_create(
        secrets_dir / "kek",
        lambda: "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    )


def relayer_private_key(secrets_dir: Path) -> str:
    """The relayer account's key for the embedded chain (funded by the dev-chain launcher)."""
    return _read_or_create(secrets_dir / "relayer_key", lambda: "0x" + secrets.token_hex(32))
