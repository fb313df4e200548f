"""Thin Celery tasks of the ehr app (periodic runs are in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from ehr import anchoring


@shared_task(name="ehr.tasks.anchor_records", ignore_result=True)
def anchor_records() -> dict[str, Any]:
    """Batch the records waiting for an anchor (full batches, or a partial one that waited long enough)."""
    batches = anchoring.anchor_waiting_records()
    return {"batches": [b.batch_id for b in batches], "records": sum(b.record_count for b in batches)}
