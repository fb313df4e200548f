"""The hospital worker's Celery task: one local round (the logic is federated.worker.local_round's).

Acknowledged late and rejected (re-queued) when its worker dies, so a worker killed mid-round loses no
round: the redelivered task redoes the work, and the server's answers make that harmless. Transient
failures (the API, the chain node or the content store down) are retried with exponential backoff, never
past the round's signature deadline; refusals and the server's refusals are final. Nothing here touches
the database: `manage.py hospital_worker` imports this module in a process without database access.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from federated.worker import runtime
from federated.worker.local_round import run_round
from federated.worker.round_task import TRANSIENT_ERRORS, BadTask, RoundTask
from healthhash.celery import app

log = logging.getLogger(__name__)

TASK_NAME = "federated.worker.local_round"
MAX_RETRIES = 10
_BACKOFF_BASE_S = 1.0
_BACKOFF_MAX_S = 30.0


def backoff_s(retries: int) -> float:
    """Seconds before retry number `retries` + 1: 1, 2, 4, ... capped at 30."""
    return float(min(_BACKOFF_BASE_S * 2**retries, _BACKOFF_MAX_S))


@app.task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
)
def local_round(self: Task, **kwargs: Any) -> dict[str, Any]:
    """One hospital's part in one round; kwargs as the coordinator sends them (DESIGN14, step 1)."""
    try:
        task = RoundTask.from_kwargs(kwargs)
    except BadTask as exc:
        log.error("dropping a malformed local round task: %s", exc)
        return {"status": "bad_task", "detail": str(exc)}
    worker = runtime.current()
    try:
        outcome = run_round(task, worker)
    except BadTask as exc:
        log.error("dropping local round task: %s", exc)
        return {"status": "bad_task", "detail": str(exc)}
    except TRANSIENT_ERRORS as exc:
        countdown = backoff_s(self.request.retries)
        if time.time() + countdown >= task.deadline or self.request.retries >= MAX_RETRIES:
            log.error(
                "job %s round %s: giving up after %d retries: %s",
                task.job_id,
                task.round_number,
                self.request.retries,
                exc,
            )
            return {"status": "gave_up", "detail": str(exc)}
        log.warning("job %s round %s: %s; retrying in %.0f s", task.job_id, task.round_number, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    log.info("job %s round %s: %s %s", task.job_id, task.round_number, outcome.status, outcome.reason)
    return outcome.as_dict()
