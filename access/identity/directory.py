"""Registering hospitals and doctors on the chain's Directory.

The acting admin signs an EIP-712 DirectoryAction with their key (managed keys are unlocked by
password for this one request); the relayer submits it through the outbox, so admins need no ether.
The Hospital/Doctor rows turn active only when the indexer sees the Directory event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from eth_account.signers.local import LocalAccount

from access.identity import services as identity_services
from access.identity.directory_status import DOCTOR_OPS, HOSPITAL_OPS, directory_actions
from access.identity.keys import unlock_managed_key
from access.identity.users import address_of
from access.models import Doctor, Hospital, Role, User
from contracts import client, outbox
from contracts.messages import DirectoryAction, Domain
from contracts.models import OutboxItem
from contracts.relayer_kinds import DirectoryActionItem
from contracts.typed_data import (
    OP_DEACTIVATE_DOCTOR,
    OP_DEACTIVATE_HOSPITAL,
    OP_REGISTER_DOCTOR,
    OP_REGISTER_HOSPITAL,
    ZERO_ADDRESS,
)
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound


@transaction.atomic
def queue_directory_action(
    *, signer: LocalAccount, op: int, hospital_id: str, subject: str = ZERO_ADDRESS, admin: str = ZERO_ADDRESS
) -> OutboxItem:
    action = DirectoryAction(
        op=op,
        hospital_id=bytes.fromhex(hospital_id.removeprefix("0x")),
        subject=subject,
        admin=admin,
        nonce=outbox.next_nonce(
            contract_name="Directory", kind=DirectoryActionItem.kind, signer=signer.address
        ),
        deadline=int(time.time()) + settings.CONSENT_SIGNATURE_TTL_S,
    )
    domain = Domain(client.chain_id(), client.deployment_address("Directory"))
    signature = signer.sign_typed_data(full_message=action.typed_data(domain)).signature
    return outbox.enqueue(DirectoryActionItem(action, signer.address, signature))


def register_hospital(*, hospital: Hospital, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.CONSORTIUM_ADMIN:
        raise Forbidden("only the consortium admin registers hospitals")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(
        signer=signer,
        op=OP_REGISTER_HOSPITAL,
        hospital_id=hospital.hospital_id,
        subject=hospital.account_address,
        admin=address_of(hospital.admin),
    )


def deactivate_hospital(*, hospital: Hospital, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.CONSORTIUM_ADMIN:
        raise Forbidden("only the consortium admin deactivates hospitals")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(signer=signer, op=OP_DEACTIVATE_HOSPITAL, hospital_id=hospital.hospital_id)


def register_doctor(*, doctor: Doctor, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.HOSPITAL_ADMIN or actor.hospital_id != doctor.hospital_id:
        raise Forbidden("only the admin of the doctor's hospital registers its doctors")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(
        signer=signer,
        op=OP_REGISTER_DOCTOR,
        hospital_id=doctor.hospital.hospital_id,
        subject=address_of(doctor.user),
    )


def deactivate_doctor(*, doctor: Doctor, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.HOSPITAL_ADMIN or actor.hospital_id != doctor.hospital_id:
        raise Forbidden("only the admin of the doctor's hospital deactivates its doctors")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(
        signer=signer,
        op=OP_DEACTIVATE_DOCTOR,
        hospital_id=doctor.hospital.hospital_id,
        subject=address_of(doctor.user),
    )


# --------------------------------------------------------------------------- the API's and commands' doors


class DirectoryActionPending(Conflict):
    code = "directory_action_pending"


class NotActiveInDirectory(Conflict):
    code = "not_active"


@contextmanager
def _fields_renamed(names: dict[str, str]) -> Iterator[None]:
    """Errors about the new user's `password` are about this request's `doctor_password` (say), not the
    acting admin's `password`: rename the field they name."""
    try:
        yield
    except DomainError as exc:
        if exc.field in names:
            exc.field = names[exc.field]
        raise


def _require_consortium_admin(actor: User, *, to: str) -> None:
    if actor.role != Role.CONSORTIUM_ADMIN:
        raise Forbidden(f"only the consortium admin may {to}")


def _require_admin_of(actor: User, hospital: Hospital, *, to: str) -> None:
    if actor.role != Role.HOSPITAL_ADMIN or actor.hospital_id != hospital.pk:
        raise Forbidden(f"only the admin of {hospital.slug} may {to}")


def _refuse_if_pending(*, hospital_id: str, ops: tuple[int, ...], subject: str | None = None) -> None:
    """A second action while one is on its way would be refused by the chain: say so now (409)."""
    waiting = directory_actions(hospital_id=hospital_id, ops=ops, subject=subject).filter(
        status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT]
    )
    if waiting.exists():
        raise DirectoryActionPending("A Directory action for this entry is still on its way to the chain.")


@transaction.atomic
def create_and_register_hospital(
    *, actor: User, password: str, slug: str, name: str, admin_username: str, admin_password: str = ""
) -> tuple[Hospital, OutboxItem]:
    """Create a hospital and queue its Directory registration, signed by the consortium admin.

    With `admin_password` a new hospital-admin user `admin_username` is created with it (and a
    managed key); without, `admin_username` must be an existing hospital admin who runs no hospital.
    """
    _require_consortium_admin(actor, to="register hospitals")
    if admin_password:
        with _fields_renamed({"username": "admin_username", "password": "admin_password"}):
            admin = identity_services.register_user(
                username=admin_username, password=admin_password, role=Role.HOSPITAL_ADMIN
            )
    else:
        admin = _existing_admin(admin_username)
    with _fields_renamed({"admin": "admin_username"}):
        hospital = identity_services.create_hospital(slug=slug, name=name, admin=admin)
    return hospital, register_hospital(hospital=hospital, actor=actor, password=password)


def _existing_admin(username: str) -> User:
    admin = User.objects.filter(username=username).first()
    if admin is None:
        raise NotFound(f"No user {username!r}.", field="admin_username", code="unknown_admin")
    if not admin.eth_address:
        raise DomainError(f"{username} has no Ethereum address.", field="admin_username")
    return admin


def request_hospital_deactivation(*, hospital: Hospital, actor: User, password: str) -> OutboxItem:
    """Queue the deactivation of an active hospital (its doctors stop being grantees with it)."""
    _require_consortium_admin(actor, to="deactivate hospitals")
    if not hospital.active:
        raise NotActiveInDirectory(f"{hospital.slug} is not active in the Directory.")
    _refuse_if_pending(hospital_id=hospital.hospital_id, ops=HOSPITAL_OPS)
    return deactivate_hospital(hospital=hospital, actor=actor, password=password)


@transaction.atomic
def create_and_register_doctor(
    *,
    actor: User,
    password: str,
    hospital: Hospital,
    username: str,
    doctor_password: str = "",
    eth_address: str = "",
    email: str = "",
) -> tuple[Doctor, OutboxItem]:
    """Create a doctor's account at `hospital` and queue its registration, signed by the hospital's admin.

    See `services.create_doctor_account` for the doctor's key (managed, or their own wallet).
    """
    _require_admin_of(actor, hospital, to="register its doctors")
    if not hospital.active:
        raise NotActiveInDirectory(
            f"{hospital.slug} is not active in the Directory yet; register doctors once it is.",
            code="hospital_not_active",
        )
    with _fields_renamed({"password": "doctor_password"}):
        doctor = identity_services.create_doctor_account(
            hospital=hospital,
            username=username,
            password=doctor_password,
            eth_address=eth_address,
            email=email,
        )
    return doctor, register_doctor(doctor=doctor, actor=actor, password=password)


def request_doctor_deactivation(*, doctor: Doctor, actor: User, password: str) -> OutboxItem:
    """Queue the deactivation of an active doctor: consents to them stop letting them in once mined."""
    _require_admin_of(actor, doctor.hospital, to="deactivate its doctors")
    if not doctor.active:
        raise NotActiveInDirectory(f"{doctor.user.username} is not active in the Directory.")
    subject = doctor.user.eth_address or ZERO_ADDRESS
    _refuse_if_pending(hospital_id=doctor.hospital.hospital_id, ops=DOCTOR_OPS, subject=subject)
    return deactivate_doctor(doctor=doctor, actor=actor, password=password)
