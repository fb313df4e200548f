"""The hospital key for its worker: exported once by the hospital admin's password, owner-only, never
printed, never overwritten; and the worker reads only such a file."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from federated.worker.runtime import WorkerStartRefused, read_key_file
from tests.conftest import PASSWORD, Personas

pytestmark = pytest.mark.django_db


def _export(tmp_path: Path, *, password: str = PASSWORD, out: Path | None = None) -> tuple[Path, str]:
    password_file = tmp_path / "password.txt"
    password_file.write_text(password + "\n")
    out = out or tmp_path / "general.key"
    stdout = io.StringIO()
    # As the demo calls it: keyword options, which call_command passes through without argparse's types.
    call_command(
        "export_hospital_key",
        hospital="general-hospital",
        out=str(out),
        password_file=str(password_file),
        stdout=stdout,
    )
    return out, stdout.getvalue()


def test_the_exported_key_file_is_owner_only_and_holds_the_hospital_account(
    personas: Personas, tmp_path: Path
) -> None:
    out, printed = _export(tmp_path)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    account = read_key_file(out)
    assert account.address == personas.general.account_address
    assert bytes(account.key) == bytes(personas.chain.accounts.hospital_account.key)
    key_hex = bytes(account.key).hex()
    assert key_hex not in printed and account.address in printed


def test_an_existing_file_is_never_overwritten(personas: Personas, tmp_path: Path) -> None:
    existing = tmp_path / "general.key"
    existing.write_text("keep me")
    with pytest.raises(CommandError, match="not overwriting"):
        _export(tmp_path, out=existing)
    assert existing.read_text() == "keep me"


def test_a_wrong_password_exports_nothing(personas: Personas, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not unlocked"):
        _export(tmp_path, password="not-the-password")
    assert not (tmp_path / "general.key").exists()


def test_the_worker_refuses_a_key_file_others_can_read(personas: Personas, tmp_path: Path) -> None:
    out, _ = _export(tmp_path)
    out.chmod(0o640)
    with pytest.raises(WorkerStartRefused, match="readable by others"):
        read_key_file(out)


def test_the_worker_refuses_a_file_that_holds_no_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("0x1234\n")
    bad.chmod(0o600)
    with pytest.raises(WorkerStartRefused, match="32-byte hex"):
        read_key_file(bad)
