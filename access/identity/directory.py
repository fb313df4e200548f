"""Registering hospitals and doctors on the chain's Directory.

The acting admin signs an EIP-712 DirectoryAction with their key (managed keys are unlocked by
password for this one request); the relayer submits it through the outbox, so admins need no ether.
The Hospital/Doctor rows turn active only when the indexer sees the Directory event.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction
from eth_account.signers.local import LocalAccount

from access.identity.keys import unlock_managed_key
from access.models import Doctor, Hospital, Role, User
from contracts import client, outbox
from contracts.models import OutboxItem
from contracts.typed_data import (
    OP_DEACTIVATE_DOCTOR,
    OP_DEACTIVATE_HOSPITAL,
    OP_REGISTER_DOCTOR,
    OP_REGISTER_HOSPITAL,
    ZERO_ADDRESS,
    directory_action_typed_data,
)
from healthhash.errors import Forbidden


def _next_nonce(signer: str) -> int:
    """The Directory nonce of `signer`, counting its actions still on their way to the chain."""
    mined = int(client.call("Directory", "nonces", signer))
    queued = OutboxItem.objects.filter(
        kind="directory.action",
        payload__signer=signer,
        status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT],
    ).count()
    return mined + queued


@transaction.atomic
def queue_directory_action(
    *, signer: LocalAccount, op: int, hospital_id: str, subject: str = ZERO_ADDRESS, admin: str = ZERO_ADDRESS
) -> OutboxItem:
    nonce = _next_nonce(signer.address)
    payload: dict[str, Any] = directory_action_typed_data(
        chain_id=client.chain_id(),
        verifying_contract=client.contract("Directory").address,
        op=op,
        hospital_id=bytes.fromhex(hospital_id.removeprefix("0x")),
        subject=subject,
        admin=admin,
        nonce=nonce,
        deadline=int(time.time()) + settings.CONSENT_SIGNATURE_TTL_S,
    )
    signature = signer.sign_typed_data(full_message=payload).signature.hex()
    return outbox.enqueue(
        kind="directory.action",
        payload={
            "message": payload["message"],
            "signer": signer.address,
            "signature": "0x" + signature.removeprefix("0x"),
        },
        idempotency_key=f"directory.action:{signer.address}:{nonce}",
    )


def register_hospital(*, hospital: Hospital, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.CONSORTIUM_ADMIN:
        raise Forbidden("only the consortium admin registers hospitals")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(
        signer=signer,
        op=OP_REGISTER_HOSPITAL,
        hospital_id=hospital.hospital_id,
        subject=hospital.account_address,
        admin=hospital.admin.eth_address,
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
        subject=doctor.user.eth_address,
    )


def deactivate_doctor(*, doctor: Doctor, actor: User, password: str) -> OutboxItem:
    if actor.role != Role.HOSPITAL_ADMIN or actor.hospital_id != doctor.hospital_id:
        raise Forbidden("only the admin of the doctor's hospital deactivates its doctors")
    signer = unlock_managed_key(user=actor, password=password)
    return queue_directory_action(
        signer=signer,
        op=OP_DEACTIVATE_DOCTOR,
        hospital_id=doctor.hospital.hospital_id,
        subject=doctor.user.eth_address,
    )
