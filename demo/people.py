"""The demo consortium: who exists, how they are created, and how they get onto the chain.

Idempotent: running it again finds the existing users and registers only what the chain lacks.
The demo password is generated once into var/secrets (never committed) and printed for the logins.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from django.conf import settings

from access.identity import directory as directory_services
from access.identity import services as identity_services
from access.identity.keys import create_managed_key
from access.models import Doctor, Hospital, Role, User
from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from contracts.relayer_kinds import DirectoryActionItem

CONSORTIUM_ADMIN = "consortium"
HOSPITALS = (
    ("st-mary", "St Mary's Hospital", ("dr-house", "dr-grey")),
    ("northside", "Northside Clinic", ("dr-quinn", "dr-ross")),
    ("lakeside", "Lakeside Medical Centre", ("dr-watson", "dr-yang")),
)
PATIENTS = ("alice", "ben", "chloe", "dev", "elena", "farah")


@dataclass
class DemoWorld:
    password: str
    consortium_admin: User
    hospitals: list[Hospital] = field(default_factory=list)
    doctors: list[Doctor] = field(default_factory=list)
    patients: list[User] = field(default_factory=list)


def demo_password() -> str:
    path = settings.SECRETS_DIR / "demo_password"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("hh-" + secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


def address_of(user: User) -> str:
    """The user's Ethereum address: every demo user is created with a managed key, so one is set."""
    if not user.eth_address:
        raise ValueError(f"demo user {user.username} has no Ethereum address")
    return user.eth_address


def _user(username: str, *, role: str, password: str, hospital: Hospital | None = None) -> User:
    existing = User.objects.filter(username=username).first()
    if existing is not None:
        return existing
    return identity_services.register_user(username=username, password=password, role=role, hospital=hospital)


def consortium_admin(password: str) -> User:
    return _user(CONSORTIUM_ADMIN, role=Role.CONSORTIUM_ADMIN, password=password)


def create_people(password: str) -> DemoWorld:
    world = DemoWorld(password=password, consortium_admin=consortium_admin(password))
    for slug, name, doctor_names in HOSPITALS:
        hospital = Hospital.objects.filter(slug=slug).first()
        if hospital is None:
            admin = _user(f"admin-{slug}", role=Role.HOSPITAL_ADMIN, password=password)
            hospital = identity_services.create_hospital(slug=slug, name=name, admin=admin)
        world.hospitals.append(hospital)
        for username in doctor_names:
            user = _user(username, role=Role.DOCTOR, password=password, hospital=hospital)
            world.doctors.append(user.doctor_profile)
    world.patients = [_user(name, role=Role.PATIENT, password=password) for name in PATIENTS]
    return world


def table_patient_key(username: str) -> bytes:
    """The demo's key for a table patient, derived from the demo's own secret (var/secrets/demo_seed).

    Table patients have no password (no login), so nobody could unlock a managed key for them; the demo
    plays them by re-deriving their keys, and signs their TRAINING consents as their wallets would.
    """
    path = settings.SECRETS_DIR / "demo_seed"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    seed = bytes.fromhex(path.read_text().strip())
    return hashlib.sha256(b"healthhash demo patient\x00" + seed + username.encode()).digest()


def create_table_patients(count: int) -> list[User]:
    """Patients for the demo data set's rows ("wdbc-0001"...): managed keys, no password (no login).

    Skipping password hashing keeps this at a few ms a patient; they exist to own charts. Their keys are
    `table_patient_key`, so the demo can sign for them.
    """
    existing = {u.username: u for u in User.objects.filter(username__startswith="wdbc-")}
    patients = []
    for index in range(1, count + 1):
        username = f"wdbc-{index:04d}"
        user = existing.get(username)
        if user is None:
            user = User(username=username, role=Role.PATIENT)
            user.set_unusable_password()
            user.save()
            create_managed_key(user=user, private_key=table_patient_key(username))
        patients.append(user)
    return patients


def register_on_chain(world: DemoWorld) -> None:
    """Queue the Directory actions the chain lacks, then drive them through relayer and indexer."""
    for hospital in world.hospitals:
        if not hospital.active and not _queued(hospital.hospital_id, hospital.account_address):
            directory_services.register_hospital(
                hospital=hospital, actor=world.consortium_admin, password=world.password
            )
    drain_outbox()
    for doctor in world.doctors:
        doctor.refresh_from_db()
        if not doctor.active and not _queued(doctor.hospital.hospital_id, address_of(doctor.user)):
            directory_services.register_doctor(
                doctor=doctor, actor=doctor.hospital.admin, password=world.password
            )
    drain_outbox()


def _queued(hospital_id: str, subject: str) -> bool:
    return OutboxItem.objects.filter(
        kind=DirectoryActionItem.kind,
        payload__message__hospitalId=hospital_id,
        payload__message__subject=subject,
        status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT, OutboxItem.Status.CONFIRMED],
    ).exists()
