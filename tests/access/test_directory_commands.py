"""The operators' Directory commands: the same doors as the API, the admin's password from the
environment (or a prompt), never from a flag."""

from __future__ import annotations

import secrets
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from access.identity.directory_status import doctor_status
from access.models import Doctor, Hospital, KeyKind, Role, User
from contracts import client
from contracts.drain import drain_outbox
from tests.conftest import PASSWORD, Personas

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-fresh-long-passphrase"


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHHASH_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("HEALTHHASH_NEW_USER_PASSWORD", NEW_PASSWORD)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_then_deactivate_a_hospital_from_the_command_line(personas: Personas, passwords: None) -> None:
    slug = f"h-{secrets.token_hex(4)}"
    admin_name = f"admin-{slug}"
    output = run(
        "create_hospital", "--actor", "cadmin", "--slug", slug, "--name", "Hill", "--admin", admin_name,
        "--new-admin", "--wait",
    )  # fmt: skip
    assert f"hospital {slug}: active" in output
    hospital = Hospital.objects.get(slug=slug)
    assert hospital.active and hospital.admin.username == admin_name
    assert hospital.admin.check_password(NEW_PASSWORD)

    output = run("deactivate_hospital", "--actor", "cadmin", "--slug", slug)
    assert f"hospital {slug}: pending" in output
    drain_outbox()
    hospital.refresh_from_db()
    assert not hospital.active
    assert client.call("Directory", "hospital", bytes.fromhex(hospital.hospital_id[2:]))[2] is False


def test_create_then_deactivate_a_doctor_from_the_command_line(personas: Personas, passwords: None) -> None:
    username = f"dr-{secrets.token_hex(3)}"
    output = run("create_doctor", "--actor", "hadmin", "--username", username)
    assert f"doctor {username}" in output and ": pending" in output
    drain_outbox()
    doctor = Doctor.objects.select_related("user", "hospital").get(user__username=username)
    assert doctor_status(doctor).status == "active" and doctor.hospital == personas.general
    assert doctor.user.check_password(NEW_PASSWORD) and doctor.user.key_kind == KeyKind.MANAGED

    output = run("deactivate_doctor", "--actor", "hadmin", "--username", username, "--wait")
    assert f"doctor {username}: inactive" in output


def test_commands_refuse_the_wrong_admin_and_the_wrong_password(
    personas: Personas, passwords: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CommandError, match="forbidden"):
        run("deactivate_doctor", "--actor", "other-hadmin", "--username", "bob")
    with pytest.raises(CommandError, match="forbidden"):
        run("create_hospital", "--actor", "hadmin", "--slug", "x-1", "--name", "X", "--admin", "hadmin")
    monkeypatch.setenv("HEALTHHASH_ADMIN_PASSWORD", "not-the-password")
    with pytest.raises(CommandError, match="bad_password"):
        run("create_doctor", "--actor", "hadmin", "--username", "dr-nobody")
    assert not User.objects.filter(username="dr-nobody").exists()


def test_without_the_variable_and_without_a_terminal_the_command_says_what_to_set(
    personas: Personas, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTHHASH_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", StringIO())  # not a terminal: no prompt possible
    with pytest.raises(CommandError, match="HEALTHHASH_ADMIN_PASSWORD"):
        run("deactivate_hospital", "--actor", "cadmin", "--slug", "city-clinic")


def test_create_patient_from_the_command_line(db: None, passwords: None) -> None:
    output = run("create_patient", "--username", "walk-in")
    user = User.objects.get(username="walk-in")
    assert user.role == Role.PATIENT and user.key_kind == KeyKind.MANAGED
    assert user.check_password(NEW_PASSWORD) and f"{user.eth_address} (managed key)" in output
