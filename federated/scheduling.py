"""When a ready job runs: now, at a time, or periodically (django-celery-beat).

A schedule is JSON on the job: {"kind": "now"} | {"kind": "at", "at": ISO 8601 with a time zone} |
{"kind": "periodic", "every_s": seconds >= MIN_PERIOD_S}.
- now: the job starts at once (round 0).
- at: the job waits as `scheduled`; `federated.tasks.run_scheduled_job` is sent with that ETA, and the
  sweep starts it if that message was lost.
- periodic: the first run starts at once; a PeriodicTask (IntervalSchedule every `every_s` seconds) fires
  `federated.tasks.run_scheduled_job`, and each firing runs `rounds` more rounds of the same job, round
  numbers continuing (run k is rounds (k-1)·rounds+1 .. k·rounds), each pinned to its own block, so
  consents granted or revoked since count. Between runs the job is `scheduled`; a firing while a run is
  still going is skipped. The plan hash is unchanged, so the hospitals' approvals carry over. Cancelling
  the job deletes its PeriodicTask; a failed run disables it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from access.models import User
from federated import rounds
from federated.models import TrainingJob
from federated.services import _require_job_admin
from healthhash.errors import DomainError

log = logging.getLogger(__name__)

KINDS = ("now", "at", "periodic")
MIN_PERIOD_S = 10
RUN_SCHEDULED_TASK = "federated.tasks.run_scheduled_job"


class InvalidSchedule(DomainError):
    code = "invalid_schedule"


def validate_schedule(schedule: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schedule in its stored form; InvalidSchedule (400) naming the bad member."""
    if schedule is None:
        return {"kind": "now"}
    if not isinstance(schedule, Mapping) or schedule.get("kind") not in KINDS:
        raise InvalidSchedule(f"schedule.kind must be one of {', '.join(KINDS)}.", field="schedule.kind")
    kind = schedule["kind"]
    allowed = {"now": {"kind"}, "at": {"kind", "at"}, "periodic": {"kind", "every_s"}}[kind]
    unknown = sorted(set(schedule) - allowed)
    if unknown:
        raise InvalidSchedule(
            f"A {kind} schedule has no member {unknown[0]!r}.", field=f"schedule.{unknown[0]}"
        )
    if kind == "at":
        return {"kind": "at", "at": _moment(schedule.get("at")).isoformat()}
    if kind == "periodic":
        every = schedule.get("every_s")
        if isinstance(every, bool) or not isinstance(every, int) or every < MIN_PERIOD_S:
            raise InvalidSchedule(
                f"every_s must be a whole number of seconds >= {MIN_PERIOD_S}.", field="schedule.every_s"
            )
        return {"kind": "periodic", "every_s": every}
    return {"kind": "now"}


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidSchedule("at must be an ISO 8601 time with a time zone.", field="schedule.at")
    return moment


@transaction.atomic
def schedule_job(
    *, job: TrainingJob, admin: User | None, schedule: Mapping[str, Any] | None = None
) -> TrainingJob:
    """Start a ready job by its schedule (`schedule` replaces the stored one when given). Only the
    consortium admin or an admin of a participating hospital may; `admin=None` is the operator at the
    command line (`manage.py train`), who has the database anyway."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if admin is not None:
        hospitals = set(job.participants.values_list("hospital_id", flat=True))
        _require_job_admin(admin, hospitals, to="start this job")
    if job.status != TrainingJob.Status.READY:
        raise rounds.JobNotReady(f"A {job.status} job cannot be started; it must be ready.")
    stored = validate_schedule(job.schedule if schedule is None else schedule)
    job.schedule = stored
    job.save(update_fields=["schedule"])
    if stored["kind"] == "at" and _moment(stored["at"]) > timezone.now():
        job.status = TrainingJob.Status.SCHEDULED
        job.save(update_fields=["status"])
        job_pk, eta = job.pk, _moment(stored["at"])
        transaction.on_commit(lambda: _send_run(job_pk, eta=eta))
        return job
    if stored["kind"] == "periodic":
        job.periodic_task = _periodic_task(job, every_s=stored["every_s"])
        job.save(update_fields=["periodic_task"])
    return rounds.start_job(job=job)


def _periodic_task(job: TrainingJob, *, every_s: int) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_s, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=f"training job {job.job_id}",
        defaults={
            "task": RUN_SCHEDULED_TASK,
            "interval": interval,
            "kwargs": json.dumps({"job_pk": job.pk}),
            "enabled": True,
            # The first run starts now; the first firing comes one period later.
            "start_time": timezone.now() + timedelta(seconds=every_s),
        },
    )
    return task


def _send_run(job_pk: int, *, eta: datetime) -> None:
    try:
        from federated.tasks import run_scheduled_job

        run_scheduled_job.apply_async(kwargs={"job_pk": job_pk}, eta=eta)
    except Exception:
        log.warning("could not schedule job %s; the sweep starts it when due", job_pk, exc_info=True)


def run_scheduled_job(*, job: TrainingJob) -> TrainingJob:
    """A firing (the `at` time, or a periodic tick): start the job's next run if it is waiting for one."""
    job = TrainingJob.objects.get(pk=job.pk)
    if job.status != TrainingJob.Status.SCHEDULED:
        if job.status in (TrainingJob.Status.CANCELLED, TrainingJob.Status.FAILED) and job.periodic_task_id:
            PeriodicTask.objects.filter(pk=job.periodic_task_id).update(enabled=False)
        log.info("job %s is %s: the firing starts nothing", job.job_id, job.status)
        return job
    return rounds.start_job(job=job)


def due_jobs() -> list[TrainingJob]:
    """`at` jobs past their time still waiting (their ETA message was lost)."""
    waiting = TrainingJob.objects.filter(status=TrainingJob.Status.SCHEDULED, schedule__kind="at")
    now = timezone.now()
    return [job for job in waiting if _moment(job.schedule["at"]) <= now]
