"""Sending a round's local-training task to each hospital's own queue, after the round's rows commit.

Each participating hospital gets `federated.worker.local_round` on queue `hospital.<slug>`, with kwargs
(JSON): {"job_id", "round", "kind", "hospital_id", "plan", "plan_hash", "pinned_block", "global":
{"cid", "sha256"} | null, "round_config", "seed", "deadline"} (DESIGN14 step 1). The task is sent by name:
the server never imports the worker's code.

A broker that is down must not fail the request or task that started the round: a failed send is logged
and leaves the row's `dispatched_at` empty; `federated.tasks.sweep_rounds` (beat, every few seconds) sends
those again while the round runs, and closes the round at its deadline whatever happened to the timeout
message. Kombu retries a publish a few times first (Celery's default publish retry policy).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from federated.models import ModelVersion, RoundUpdate, TrainingJob, TrainingRound
from federated.plan import plan_document
from federated.strategies import strategy_from_spec

log = logging.getLogger(__name__)

LOCAL_ROUND_TASK = "federated.worker.local_round"


def hospital_queue(slug: str) -> str:
    return f"hospital.{slug}"


def signature_deadline(training_round: TrainingRound, *, ttl_s: int) -> int:
    """The `deadline` every Update of the round is signed with: the round's end plus time to relay it."""
    return int(training_round.deadline_at.timestamp()) + ttl_s


def round_kwargs(
    *, job: TrainingJob, training_round: TrainingRound, hospital_id: str, deadline: int
) -> dict[str, Any]:
    """What one hospital's local-round task is told (everything JSON)."""
    from federated.aggregation import load_weights  # the store is needed for train rounds only

    global_ref = None
    round_config: dict[str, Any] = {}
    if training_round.kind == TrainingRound.Kind.TRAIN:
        base = ModelVersion.objects.get(job=job, round=training_round.number - 1)
        global_ref = {"cid": base.cid, "sha256": base.weights_hash}
        weights = load_weights(cid=base.cid, weights_hash=base.weights_hash)
        strategy = strategy_from_spec(job.strategy_spec)
        round_config = strategy.configure_round(round_number=training_round.number, global_weights=weights)
    return {
        "job_id": job.job_id,
        "round": training_round.number,
        "kind": training_round.kind,
        "hospital_id": hospital_id,
        "plan": plan_document(job),
        "plan_hash": job.plan_hash,
        "pinned_block": training_round.pinned_block,
        "global": global_ref,
        "round_config": round_config,
        "seed": job.seed,
        "deadline": deadline,
    }


def send_round(round_pk: int, *, ttl_s: int) -> int:
    """Send the round's task to every hospital whose row waits for one; returns how many were sent."""
    from healthhash.celery import app

    training_round = TrainingRound.objects.select_related("job").get(pk=round_pk)
    job = training_round.job
    if training_round.status != TrainingRound.Status.RUNNING or job.status != TrainingJob.Status.RUNNING:
        return 0
    rows = list(
        RoundUpdate.objects.select_related("hospital").filter(
            round=training_round, status=RoundUpdate.Status.DISPATCHED, dispatched_at__isnull=True
        )
    )
    if not rows:
        return 0
    deadline = signature_deadline(training_round, ttl_s=ttl_s)
    try:
        kwargs_by_row = {
            row.pk: round_kwargs(
                job=job,
                training_round=training_round,
                hospital_id=row.hospital.hospital_id,
                deadline=deadline,
            )
            for row in rows
        }
    except Exception:
        log.warning(
            "round %s of job %s: could not build its tasks", training_round.number, job.job_id, exc_info=True
        )
        return 0
    sent = 0
    for row in rows:
        try:
            app.send_task(
                LOCAL_ROUND_TASK, kwargs=kwargs_by_row[row.pk], queue=hospital_queue(row.hospital.slug)
            )
        except Exception:  # any broker error: logged, the sweep sends it again
            log.warning(
                "round %s of job %s: could not send the task to %s; the sweep retries",
                training_round.number,
                job.job_id,
                hospital_queue(row.hospital.slug),
                exc_info=True,
            )
            continue
        RoundUpdate.objects.filter(pk=row.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
        sent += 1
    return sent


def schedule_close(job_pk: int, number: int, *, countdown_s: float) -> None:
    """Ask the server worker to close the round at its timeout (the sweep does it if this is lost)."""
    try:
        from federated.tasks import close_round

        close_round.apply_async(kwargs={"job_pk": job_pk, "number": number}, countdown=countdown_s)
    except Exception:
        log.warning(
            "could not schedule the close of round %s of job %s; the sweep closes it",
            number,
            job_pk,
            exc_info=True,
        )


def enqueue_aggregation(job_pk: int, number: int) -> None:
    try:
        from federated.tasks import aggregate_round

        aggregate_round.apply_async(kwargs={"job_pk": job_pk, "number": number})
    except Exception:
        log.warning(
            "could not enqueue the aggregation of round %s of job %s; the sweep does",
            number,
            job_pk,
            exc_info=True,
        )


def redispatch_silent(*, after_s: float) -> int:
    """Hospitals still silent `after_s` after their task was sent get it again: a worker killed mid-task (kill
    -9, a lost machine) may take the message with it (kombu's SQLite transport never hands a taken message
    back; Redis only after its visibility timeout, an hour by default). Their rows go back to "not sent" for
    `send_round`; a worker that was merely slow answers the repeat as a duplicate. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=after_s)
    return RoundUpdate.objects.filter(
        status=RoundUpdate.Status.DISPATCHED,
        dispatched_at__lt=cutoff,
        round__status=TrainingRound.Status.RUNNING,
        round__job__status=TrainingJob.Status.RUNNING,
    ).update(dispatched_at=None)


def rounds_waiting_for_dispatch() -> list[int]:
    """Running rounds with a hospital whose task never reached the broker."""
    return list(
        TrainingRound.objects.filter(
            status=TrainingRound.Status.RUNNING,
            job__status=TrainingJob.Status.RUNNING,
            updates__status=RoundUpdate.Status.DISPATCHED,
            updates__dispatched_at__isnull=True,
            started_at__lt=timezone.now() - timedelta(seconds=2),
        )
        .values_list("pk", flat=True)
        .distinct()
    )


def overdue_rounds() -> list[tuple[int, int]]:
    """(job pk, round number) of running rounds past their deadline."""
    rows = TrainingRound.objects.filter(status=TrainingRound.Status.RUNNING, deadline_at__lt=timezone.now())
    return list(rows.values_list("job_id", "number"))


def stuck_aggregations(*, grace_s: float) -> list[tuple[int, int]]:
    """Rounds aggregating since well past their deadline: their aggregation task was lost or gave up."""
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    rows = TrainingRound.objects.filter(status=TrainingRound.Status.AGGREGATING, deadline_at__lt=cutoff)
    return list(rows.values_list("job_id", "number"))
