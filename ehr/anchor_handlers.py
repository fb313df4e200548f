"""Indexer handler for the Anchors contract's RecordRootAnchored event: the batch is anchored with the root,
block and tx the chain reports, and its records get the block. A root on chain that differs from the one
computed for the batch marks its records (`anchor_error`) and writes a tamper alert to each patient's access
log. Registered in EhrConfig.ready()."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from access.audit import log as audit
from access.audit.decisions import AccessDecision
from access.models import AccessAction, AccessOutcome
from contracts import indexer
from ehr.models import Record, RecordAnchorBatch, RecordBatchStatus

log = logging.getLogger(__name__)

ROOT_MISMATCH = "RootMismatch"


def register() -> None:
    indexer.register_handler("Anchors", "RecordRootAnchored", on_record_root_anchored)
    indexer.register_rewind(rewind_from)


def on_record_root_anchored(events: Iterable[Any]) -> None:
    """One query for the events' batches; then per batch of ours its row and one UPDATE over its records."""
    events = list(events)
    ours = RecordAnchorBatch.objects.in_bulk(
        [str(event.args["batchId"]).lower() for event in events], field_name="batch_id"
    )
    for event in events:
        batch = ours.get(str(event.args["batchId"]).lower())
        if batch is None:
            continue  # anchored by another deployment sharing the contract (or a bench)
        anchored_root = str(event.args["root"]).lower()
        batch.status = RecordBatchStatus.ANCHORED
        batch.anchored_root = anchored_root
        batch.anchored_block = event.block_number
        batch.anchored_tx_hash = event.tx_hash
        batch.anchored_at = event.block_time or timezone.now()
        batch.save(
            update_fields=["status", "anchored_root", "anchored_block", "anchored_tx_hash", "anchored_at"]
        )
        mismatch = anchored_root != batch.root
        batch.records.update(
            anchored_block=event.block_number, anchor_error=ROOT_MISMATCH if mismatch else ""
        )
        if mismatch:
            _alert(batch, f"root anchored on chain {anchored_root} differs from the batch's {batch.root}")


def _alert(batch: RecordAnchorBatch, reason: str) -> None:
    log.error("tamper alert for record batch %s: %s", batch.batch_id, reason)
    patients = batch.records.values_list("patient_address", flat=True).distinct()
    for patient_address in patients:
        audit.log_decision(
            AccessDecision.integrity_alert(),
            patient_address=patient_address,
            actor=None,
            action=AccessAction.TAMPER,
            outcome=AccessOutcome.ERROR,
            reason=reason,
            detail={"source": "anchor", "batch": batch.batch_id},
        )


def rewind_from(fork_block: int) -> None:
    """A re-org orphaned blocks >= fork_block: their anchors are not final, so forget them until re-read."""
    RecordAnchorBatch.objects.filter(anchored_block__gte=fork_block).update(
        status=RecordBatchStatus.QUEUED,
        anchored_root="",
        anchored_block=None,
        anchored_tx_hash="",
        anchored_at=None,
    )
    Record.objects.filter(anchored_block__gte=fork_block).update(anchored_block=None, anchor_error="")
