"""Secrets for the embedded (development) stack: generated once into var/secrets, never committed.

Production supplies every secret through the environment; this module is only the default when a
variable is unset, so a fresh clone runs with no manual step and still has no secret in the repo.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def _read_or_create(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
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
