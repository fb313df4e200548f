"""Thin Celery tasks of the coordinator (the server worker, default queue); the logic is federated.rounds's
and federated.scheduling's.

All are acknowledged late and re-queued when their worker dies, and idempotent (a round's result is
written once; a repeat finds it done), so a redelivery is harmless. Transient failures (the content
store, the chain node, the database) are retried with exponential backoff up to 10 minutes apart.
The hospitals' task (`federated.worker.local_round`) is not here: it runs in the hospital workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from contracts.client import ChainUnavailable
from ehr.store import StoreUnavailable
from federated import rounds, scheduling
from federated.models import TrainingJob

TRANSIENT = (StoreUnavailable, ChainUnavailable, rounds.ChainNotIndexed, OperationalError)


def _coordinator_task(name: str) -> Callable[[Callable[..., dict[str, Any]]], Task[Any, dict[str, Any]]]:
    return shared_task(
        name=name,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        autoretry_for=TRANSIENT,
        retry_backoff=True,
        retry_backoff_max=600,
        retry_jitter=True,
        max_retries=12,
    )


def _job(job_pk: int) -> TrainingJob | None:
    return TrainingJob.objects.filter(pk=job_pk).first()


@_coordinator_task("federated.tasks.start_job")
def start_job(*, job_pk: int) -> dict[str, Any]:
    job = _job(job_pk)
    if job is None:
        return {"status": "unknown_job"}
    job = rounds.start_job(job=job)
    return {"status": job.status, "round": job.current_round}


@_coordinator_task("federated.tasks.run_scheduled_job")
def run_scheduled_job(*, job_pk: int) -> dict[str, Any]:
    job = _job(job_pk)
    if job is None:
        return {"status": "unknown_job"}
    job = scheduling.run_scheduled_job(job=job)
    return {"status": job.status, "round": job.current_round}


@_coordinator_task("federated.tasks.aggregate_round")
def aggregate_round(*, job_pk: int, number: int) -> dict[str, Any]:
    job = _job(job_pk)
    if job is None:
        return {"status": "unknown_job"}
    version = rounds.aggregate_round(job=job, number=number)
    return {"version": None if version is None else version.round}


@_coordinator_task("federated.tasks.close_round")
def close_round(*, job_pk: int, number: int) -> dict[str, Any]:
    job = _job(job_pk)
    if job is None:
        return {"status": "unknown_job"}
    return {"status": rounds.close_round(job=job, number=number).status}


@shared_task(name="federated.tasks.sweep_rounds", acks_late=True, ignore_result=True)
def sweep_rounds() -> dict[str, Any]:
    """Beat, every few seconds: resend lost dispatches, close overdue rounds, start overdue `at` jobs."""
    report: dict[str, Any] = rounds.sweep_rounds()
    due = scheduling.due_jobs()
    for job in due:
        scheduling.run_scheduled_job(job=job)
    return report | {"started": len(due)}
