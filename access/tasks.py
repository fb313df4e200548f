"""Thin Celery tasks of the access app (periodic runs are in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from access.audit.anchoring import anchor_audit_heads as anchor_heads


@shared_task(name="access.tasks.anchor_audit_heads", ignore_result=True)
def anchor_audit_heads() -> dict[str, Any]:
    """Queue one Merkle root over the access-log heads changed since the last batch (if any)."""
    batch = anchor_heads()
    if batch is None:
        return {"batch": None, "heads": 0}
    return {"batch": batch.batch_id, "heads": batch.head_count, "root": batch.root}
