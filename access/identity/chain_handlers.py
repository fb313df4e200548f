"""Handlers the indexer calls with Directory events: hospitals and doctors are active while the chain says
so, and a re-org forgets registrations made in orphaned blocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from access.models import Doctor, Hospital, User
from contracts import indexer


def register() -> None:
    indexer.register_handler("Directory", "HospitalRegistered", on_hospital_registered)
    indexer.register_handler("Directory", "HospitalDeactivated", on_hospital_deactivated)
    indexer.register_handler("Directory", "HospitalAdminChanged", on_hospital_admin_changed)
    indexer.register_handler("Directory", "DoctorRegistered", on_doctor_registered)
    indexer.register_handler("Directory", "DoctorDeactivated", on_doctor_deactivated)
    indexer.register_rewind(rewind_from)


def on_hospital_registered(events: Iterable[Any]) -> None:
    for event in events:
        Hospital.objects.filter(hospital_id=event.args["hospitalId"]).update(
            active=True, registered_block=event.block_number
        )


def on_hospital_deactivated(events: Iterable[Any]) -> None:
    for event in events:
        Hospital.objects.filter(hospital_id=event.args["hospitalId"]).update(active=False)


def on_hospital_admin_changed(events: Iterable[Any]) -> None:
    for event in events:
        admin = User.objects.filter(eth_address=event.args["admin"]).first()
        if admin is not None:
            Hospital.objects.filter(hospital_id=event.args["hospitalId"]).update(admin=admin)


def on_doctor_registered(events: Iterable[Any]) -> None:
    for event in events:
        Doctor.objects.filter(
            user__eth_address=event.args["doctor"], hospital__hospital_id=event.args["hospitalId"]
        ).update(active=True, registered_block=event.block_number)


def on_doctor_deactivated(events: Iterable[Any]) -> None:
    for event in events:
        Doctor.objects.filter(user__eth_address=event.args["doctor"]).update(active=False)


def rewind_from(block_number: int) -> None:
    """Registrations mined in blocks >= block_number are no longer on the canonical chain."""
    Hospital.objects.filter(registered_block__gte=block_number).update(active=False, registered_block=None)
    Doctor.objects.filter(registered_block__gte=block_number).update(active=False, registered_block=None)
