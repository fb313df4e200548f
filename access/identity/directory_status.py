"""Where a hospital's or doctor's Directory entry stands: its mirrored `active` flag read together with
its latest signed Directory action in the outbox (pending while on its way, failed if the chain refused).

Statuses: "pending" (an action is queued, sent, or mined but not yet indexed), "active", "failed" (the
latest action was refused and the entry is not active), "inactive" (deactivated, or never registered).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from access.models import Doctor, Hospital
from contracts.models import OutboxItem
from contracts.relayer_kinds import DirectoryActionItem
from contracts.typed_data import (
    OP_DEACTIVATE_DOCTOR,
    OP_DEACTIVATE_HOSPITAL,
    OP_REGISTER_DOCTOR,
    OP_REGISTER_HOSPITAL,
)

HOSPITAL_OPS = (OP_REGISTER_HOSPITAL, OP_DEACTIVATE_HOSPITAL)
DOCTOR_OPS = (OP_REGISTER_DOCTOR, OP_DEACTIVATE_DOCTOR)
WAITING = (OutboxItem.Status.PENDING, OutboxItem.Status.SENT)


@dataclass(frozen=True)
class DirectoryStatus:
    status: str  # pending | active | failed | inactive
    action: OutboxItem | None  # the latest Directory action for the entry, if any


def directory_actions(
    *, hospital_id: str, ops: tuple[int, ...], subject: str | None = None
) -> QuerySet[OutboxItem]:
    """Signed Directory actions on one hospital (and, for doctors, one subject address), newest first."""
    actions = OutboxItem.objects.filter(
        kind=DirectoryActionItem.kind,
        payload__message__hospitalId=hospital_id.lower(),
        payload__message__op__in=list(ops),
    )
    if subject is not None:
        actions = actions.filter(payload__message__subject=subject)
    return actions.order_by("-id")


def _status(active: bool, action: OutboxItem | None) -> DirectoryStatus:
    if action is not None and action.status in WAITING:
        return DirectoryStatus("pending", action)
    if action is not None and action.status == OutboxItem.Status.CONFIRMED and active != _registers(action):
        return DirectoryStatus("pending", action)  # mined, but the indexer has not mirrored it yet
    if active:
        return DirectoryStatus("active", action)
    if action is not None and action.status == OutboxItem.Status.FAILED:
        return DirectoryStatus("failed", action)
    return DirectoryStatus("inactive", action)


def _registers(action: OutboxItem) -> bool:
    return action.payload["message"]["op"] in (OP_REGISTER_HOSPITAL, OP_REGISTER_DOCTOR)


def hospital_status(hospital: Hospital) -> DirectoryStatus:
    action = directory_actions(hospital_id=hospital.hospital_id, ops=HOSPITAL_OPS).first()
    return _status(hospital.active, action)


def doctor_status(doctor: Doctor) -> DirectoryStatus:
    action = directory_actions(
        hospital_id=doctor.hospital.hospital_id, ops=DOCTOR_OPS, subject=doctor.user.eth_address
    ).first()
    return _status(doctor.active, action)
