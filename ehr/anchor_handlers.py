"""Indexer handlers for the Anchors contract's record events: RecordAnchored fills a record's anchored
block and digest; a digest on chain that differs from ours, or an AnchorSkipped(DigestMismatch), is a
tamper alert written to the patient's access log. Registered in EhrConfig.ready()."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from access.audit import log as audit
from contracts import indexer
from contracts.events import error_name
from ehr.models import Record
from ehr.records import record_id_from_anchor

log = logging.getLogger(__name__)


def register() -> None:
    indexer.register_handler("Anchors", "RecordAnchored", on_record_anchored)
    indexer.register_handler("Anchors", "AnchorSkipped", on_anchor_skipped)
    indexer.register_rewind(rewind_from)


def _records(events: list[Any]) -> dict[Any, Record]:
    ids = [record_id_from_anchor(event.args["recordId"]) for event in events]
    return Record.objects.in_bulk([record_id for record_id in ids if record_id is not None])


def on_record_anchored(events: Iterable[Any]) -> None:
    """Batched: one query to load the records, one bulk update, alerts only for mismatches."""
    events = list(events)
    records = _records(events)
    changed = []
    for event in events:
        record = records.get(record_id_from_anchor(event.args["recordId"]))
        if record is None:
            continue  # anchored by another deployment sharing the contract, or a row since removed
        record.anchored_block = event.block_number
        record.anchored_digest = event.args["digest"].removeprefix("0x").lower()
        changed.append(record)
        if record.anchored_digest != record.digest:
            _alert(
                record, f"anchored digest {record.anchored_digest} differs from the record's {record.digest}"
            )
    Record.objects.bulk_update(changed, ["anchored_block", "anchored_digest"], batch_size=500)


def on_anchor_skipped(events: Iterable[Any]) -> None:
    events = list(events)
    records = _records(events)
    for event in events:
        record = records.get(record_id_from_anchor(event.args["recordId"]))
        if record is None:
            continue
        reason = error_name(event.args["reason"])
        Record.objects.filter(pk=record.pk).update(anchor_error=reason)
        if reason == "DigestMismatch":
            _alert(record, "the chain already holds another digest for this record id")


def _alert(record: Record, reason: str) -> None:
    log.error("tamper alert for record %s: %s", record.id, reason)
    audit.record_access(
        audit.AccessEvent(
            patient_address=record.patient_address,
            actor=None,
            actor_address="",
            action="tamper",
            purpose="OWNER",
            outcome="error",
            legal_basis="none",
            record_id=str(record.id),
            reason=reason,
            detail={"source": "anchor"},
        )
    )


def rewind_from(fork_block: int) -> None:
    """A re-org orphaned blocks >= fork_block: their anchors are not final, so forget them until re-read."""
    Record.objects.filter(anchored_block__gte=fork_block).update(anchored_block=None, anchored_digest="")
