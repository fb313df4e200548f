"""Reads of the access log: a patient's own entries, and how far their chain is anchored on chain."""

from __future__ import annotations

from django.db.models import QuerySet

from access.audit.anchoring import anchored_seq_of
from access.models import AccessLogEntry, Role, User
from healthhash.errors import Forbidden


def access_log_of(*, patient: User) -> QuerySet[AccessLogEntry]:
    """The patient's own entries, newest first; only patients have an access log to read."""
    if patient.role != Role.PATIENT or not patient.eth_address:
        raise Forbidden("only patients read an access log (their own)")
    return AccessLogEntry.objects.filter(patient_address=patient.eth_address).order_by("-seq")


def anchored_up_to(*, patient: User) -> int:
    """Entries with seq <= this are covered by a Merkle root indexed from the chain."""
    return anchored_seq_of(patient.eth_address or "")
