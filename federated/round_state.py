"""A job's rounds as state: start a job and its rounds, settle a round as answers come in (quorum in:
aggregating; quorum out of reach: the round and the job fail), and move on after a round (the next one, or
the end of the job's run). federated/rounds.py (the coordinator's services) and federated/round_results.py
(aggregation) build on it.

Locks are always taken in the order job, round, row (select_for_update), by every writer, so none deadlock;
on SQLite the IMMEDIATE transactions serialise writers anyway.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from contracts import client
from contracts.models import IndexerCursor
from federated import dispatch
from federated.models import JobHospital, ModelVersion, RoundUpdate, TrainingJob, TrainingRound
from healthhash.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

OPEN_ROWS = (RoundUpdate.Status.DISPATCHED, RoundUpdate.Status.REJECTED)  # may still send an update
_STARTABLE = (TrainingJob.Status.READY, TrainingJob.Status.SCHEDULED)


class JobNotReady(Conflict):
    code = "job_not_ready"


class ChainNotIndexed(Unavailable):
    code = "chain_not_indexed"


def signature_ttl_s() -> int:
    return int(settings.CONSENT_SIGNATURE_TTL_S)


@transaction.atomic
def start_job(*, job: TrainingJob) -> TrainingJob:
    """Run a ready (or scheduled) job: its next round starts now (round 0 for a new job; a periodic job's
    later firings continue after its last model version). A running job is returned as it is."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.status == TrainingJob.Status.RUNNING:
        return job
    if job.status not in _STARTABLE:
        raise JobNotReady(
            f"A {job.status} job cannot start; it must be ready (every plan approval on chain)."
        )
    unapproved = job.participants.exclude(
        approval=JobHospital.Approval.APPROVED, approval_plan_hash=job.plan_hash
    )
    if unapproved.exists():
        raise JobNotReady("Not every participating hospital's approval of the current plan is on chain.")
    latest = ModelVersion.objects.filter(job=job).order_by("-round").values_list("round", flat=True).first()
    job.status = TrainingJob.Status.RUNNING
    job.failure_reason = ""
    job.save(update_fields=["status", "failure_reason"])
    start_round(job=job, number=0 if latest is None else latest + 1)
    return job


def _indexed_block() -> int:
    block = (
        IndexerCursor.objects.filter(chain_id=client.chain_id()).values_list("last_block", flat=True).first()
    )
    if block is None:
        raise ChainNotIndexed("The chain indexer has not run yet: no block to pin a round's consents to.")
    return int(block)


@transaction.atomic
def start_round(*, job: TrainingJob, number: int) -> TrainingRound:
    """Round `number` of a running job (idempotent: the existing round if it was started already)."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    existing = TrainingRound.objects.filter(job=job, number=number).first()
    if existing is not None:
        return existing
    if job.status != TrainingJob.Status.RUNNING:
        raise JobNotReady(f"A {job.status} job starts no round.")
    now = timezone.now()
    training_round = TrainingRound.objects.create(
        job=job,
        number=number,
        kind=TrainingRound.Kind.MOMENTS if number == 0 else TrainingRound.Kind.TRAIN,
        pinned_block=_indexed_block(),
        started_at=now,
        deadline_at=now + timedelta(seconds=job.round_timeout_s),
    )
    hospitals = job.participants.values_list("hospital_id", flat=True)
    RoundUpdate.objects.bulk_create(
        [RoundUpdate(round=training_round, hospital_id=hospital) for hospital in hospitals]
    )
    job.current_round = number
    job.save(update_fields=["current_round"])
    round_pk, ttl_s, timeout_s = training_round.pk, signature_ttl_s(), job.round_timeout_s
    job_pk = job.pk
    transaction.on_commit(lambda: dispatch.send_round(round_pk, ttl_s=ttl_s))
    transaction.on_commit(lambda: dispatch.schedule_close(job_pk, number, countdown_s=timeout_s + 0.5))
    log.info("job %s: round %s started at block %s", job.job_id, number, training_round.pinned_block)
    return training_round


def settle(job_pk: int, round_pk: int) -> None:
    """Inside the caller's transaction, with the round locked: quorum in -> aggregating (and the
    aggregation enqueued after commit); quorum out of reach -> the round and the job fail now."""
    job = TrainingJob.objects.select_for_update().get(pk=job_pk)
    training_round = TrainingRound.objects.select_for_update().get(pk=round_pk)
    if training_round.status != TrainingRound.Status.RUNNING:
        return
    statuses = list(RoundUpdate.objects.filter(round=training_round).values_list("status", flat=True))
    accepted = statuses.count(RoundUpdate.Status.ACCEPTED)
    still_possible = sum(1 for status in statuses if status in OPEN_ROWS)
    if accepted >= job.quorum:
        training_round.status = TrainingRound.Status.AGGREGATING
        training_round.save(update_fields=["status"])
        job_pk, number = job.pk, training_round.number
        transaction.on_commit(lambda: dispatch.enqueue_aggregation(job_pk, number))
    elif accepted + still_possible < job.quorum:
        fail_round(
            job,
            training_round,
            reason=(
                f"round {training_round.number}: {accepted} of quorum {job.quorum} updates, and the other "
                f"hospitals refused or sat out ({_refusals(training_round)})"
            ),
        )


def _refusals(training_round: TrainingRound) -> str:
    rows = RoundUpdate.objects.filter(
        round=training_round, status__in=[RoundUpdate.Status.REFUSED, RoundUpdate.Status.SAT_OUT]
    ).select_related("hospital")
    return ", ".join(f"{row.hospital.slug}: {row.reason_code}" for row in rows) or "none"


def fail_round(job: TrainingJob, training_round: TrainingRound, *, reason: str) -> None:
    """The round and its job fail visibly with `reason` (caller holds both rows' locks)."""
    now = timezone.now()
    RoundUpdate.objects.filter(round=training_round, status=RoundUpdate.Status.DISPATCHED).update(
        status=RoundUpdate.Status.STRAGGLER
    )
    training_round.status = TrainingRound.Status.FAILED
    training_round.reason = reason
    training_round.finished_at = now
    training_round.save(update_fields=["status", "reason", "finished_at"])
    job.status = TrainingJob.Status.FAILED
    job.failure_reason = reason
    job.save(update_fields=["status", "failure_reason"])
    if job.periodic_task_id is not None:
        PeriodicTask.objects.filter(pk=job.periodic_task_id).update(enabled=False)
    log.warning("job %s failed: %s", job.job_id, reason)


def advance(job: TrainingJob, training_round: TrainingRound) -> None:
    """After round n: round n+1, or the end of the job's run (done; a periodic job waits for its next
    firing, each of which runs `rounds` more rounds)."""
    number = training_round.number
    if number == 0 or number % job.rounds != 0:
        start_round(job=job, number=number + 1)
        return
    periodic = job.schedule.get("kind") == "periodic" if isinstance(job.schedule, dict) else False
    job.status = TrainingJob.Status.SCHEDULED if periodic else TrainingJob.Status.DONE
    job.save(update_fields=["status"])
    log.info("job %s: round %s was the run's last; job %s", job.job_id, number, job.status)
