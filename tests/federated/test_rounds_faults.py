"""Quorum, timeouts, stragglers, refusals, cancellation and concurrency of training rounds: a round's result
is written once, whoever asks; a job that cannot make its quorum fails visibly with the reason."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from contracts.models import OutboxItem
from federated import rounds
from federated.models import ModelVersion, RoundUpdate, TrainingJob, TrainingRound
from healthhash.errors import Forbidden
from tests.federated.rounds_setup import (  # noqa: F401  (fixtures)
    SERVER_QUEUE,
    Broker,
    RoundsWorld,
    _test_kek,
    broker_fixture,
    registry,
    training_registry,
    world_fixture,
)

pytestmark = pytest.mark.django_db


def _past_deadline(training_round: TrainingRound) -> None:
    TrainingRound.objects.filter(pk=training_round.pk).update(
        deadline_at=timezone.now() - timedelta(seconds=1)
    )


def _refuse(world: RoundsWorld, job: TrainingJob, which: str, reason: str, number: int = 1) -> RoundUpdate:
    hospital = world.hospital(which)
    with world.committed():
        return rounds.receive_refusal(
            job_id=job.job_id,
            round_number=number,
            hospital_id=hospital.hospital_id,
            signer=hospital.account_address,
            reason=reason,
            detail=f"{which} says {reason}",
        )


def test_below_quorum_at_the_timeout_the_job_fails_with_the_reason(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job()
    training_round = world.running_train_round(job, broker)
    with world.committed():
        rounds.receive_update(**world.update(job, "general"))
    assert rounds.close_round(job=job, number=1).status == TrainingRound.Status.RUNNING  # not yet due

    _past_deadline(training_round)
    closed = rounds.close_round(job=job, number=1)
    job.refresh_from_db()
    assert closed.status == TrainingRound.Status.FAILED
    assert job.status == TrainingJob.Status.FAILED
    assert job.failure_reason == "round 1: 1 of quorum 2 updates by the timeout" == closed.reason
    straggler = RoundUpdate.objects.get(round=training_round, hospital=world.personas.clinic)
    assert straggler.status == RoundUpdate.Status.STRAGGLER
    assert not ModelVersion.objects.filter(job=job, round=1).exists()
    assert rounds.close_round(job=job, number=1).status == TrainingRound.Status.FAILED  # repeat: no change


def test_the_quorum_aggregates_at_once_and_the_rest_are_stragglers(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job(quorum=1, rounds=1)
    training_round = world.running_train_round(job, broker)
    with world.committed():
        rounds.receive_update(**world.update(job, "clinic"))
    training_round.refresh_from_db()
    assert training_round.status == TrainingRound.Status.AGGREGATING
    with world.committed():
        version = rounds.aggregate_round(job=job, number=1)
    assert version is not None and version.report["hospital_ids"] == ["city-clinic"]
    training_round.refresh_from_db()
    assert training_round.metrics["stragglers"] == ["general-hospital"]
    assert (
        RoundUpdate.objects.get(round=training_round, hospital=world.personas.general).status == "straggler"
    )


def test_refusals_that_make_the_quorum_unreachable_fail_the_job_at_once(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job()
    training_round = world.running_train_round(job, broker)
    row = _refuse(world, job, "general", "privacy_budget_exceeded")
    assert (
        row.status == RoundUpdate.Status.REFUSED
        and row.reason_detail == "general says privacy_budget_exceeded"
    )
    job.refresh_from_db()
    training_round.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and training_round.status == TrainingRound.Status.FAILED
    assert "general-hospital: privacy_budget_exceeded" in job.failure_reason
    assert RoundUpdate.objects.get(round=training_round, hospital=world.personas.clinic).status == "straggler"


def test_a_hospital_without_consented_records_sits_the_round_out(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(quorum=1, rounds=1)
    training_round = world.running_train_round(job, broker)
    row = _refuse(world, job, "general", rounds.NO_CONSENTED_RECORDS)
    assert row.status == RoundUpdate.Status.SAT_OUT
    assert _refuse(world, job, "general", rounds.NO_CONSENTED_RECORDS).pk == row.pk  # the same answer again
    with world.committed():
        rounds.receive_update(**world.update(job, "clinic"))
        rounds.aggregate_round(job=job, number=1)
    training_round.refresh_from_db()
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.DONE
    assert training_round.metrics["not_included"] == {"general-hospital": rounds.NO_CONSENTED_RECORDS}
    with pytest.raises(rounds.AlreadyAnswered):
        rounds.receive_update(**world.update(job, "general"))


def test_a_refused_hospital_cannot_then_send_an_update(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(quorum=1)
    world.running_train_round(job, broker)
    _refuse(world, job, "general", "plan_not_approved")
    with pytest.raises(rounds.AlreadyAnswered):
        rounds.receive_update(**world.update(job, "general"))


def test_cancel_stops_the_job_and_its_round(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    training_round = world.running_train_round(job, broker)
    with pytest.raises(Forbidden):
        rounds.cancel_job(job=job, admin=world.personas.bob)
    rounds.cancel_job(job=job, admin=world.personas.other_hadmin)
    job.refresh_from_db()
    training_round.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED and job.failure_reason == "cancelled by other-hadmin"
    assert training_round.status == TrainingRound.Status.FAILED
    with pytest.raises(rounds.RoundNotRunning):
        rounds.receive_update(**world.update(job, "general"))
    assert rounds.aggregate_round(job=job, number=1) is None
    with pytest.raises(rounds.JobFinished):
        rounds.cancel_job(job=job, admin=world.personas.hadmin)
    with pytest.raises(rounds.JobNotReady):
        rounds.start_job(job=job)


def test_a_job_starts_only_when_ready(world: RoundsWorld, broker: Broker) -> None:
    from federated import services

    job = services.create_job(
        admin=world.personas.hadmin,
        name="unapproved",
        hospitals=[world.personas.general],
        model_spec={"name": "logistic"},
        strategy_spec={"name": "fedavg"},
        local_epochs=1,
        batch_size=8,
        lr=0.1,
        rounds=1,
        quorum=1,
        round_timeout_s=60,
    )
    with pytest.raises(rounds.JobNotReady) as refused:
        rounds.start_job(job=job)
    assert refused.value.status_code == 409
    assert not TrainingRound.objects.filter(job=job).exists()


def _in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once, each on its own thread and database connection; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


@pytest.mark.django_db(transaction=True)
def test_the_last_two_updates_at_once_enqueue_one_aggregation(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(rounds=1)
    training_round = world.running_train_round(job, broker)
    bodies = [world.update(job, which) for which in ("general", "clinic")]
    broker.purge(SERVER_QUEUE)
    calls: list[Callable[[], Any]] = [partial(rounds.receive_update, **body) for body in bodies]
    results = _in_threads(calls)
    assert [duplicate for _row, duplicate in results] == [False, False]
    aggregations = [m for m in broker.take(SERVER_QUEUE) if m["task"] == "federated.tasks.aggregate_round"]
    assert [m["kwargs"] for m in aggregations] == [{"job_pk": job.pk, "number": 1}]
    training_round.refresh_from_db()
    assert training_round.status == TrainingRound.Status.AGGREGATING

    versions = _in_threads([lambda: rounds.aggregate_round(job=job, number=1)] * 2)
    assert versions[0] is not None and versions[1] is not None and versions[0].pk == versions[1].pk
    assert ModelVersion.objects.filter(job=job, round=1).count() == 1
    assert OutboxItem.objects.filter(kind="training.model_version", payload__round=1).count() == 1
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.DONE


def test_tasks_the_broker_did_not_take_are_sent_again_by_the_sweep(
    world: RoundsWorld, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = world.job()
    with broker.down(monkeypatch), world.committed():
        rounds.start_job(job=job)  # the request succeeds although no task reached a broker
    zero = TrainingRound.objects.get(job=job, number=0)
    assert not RoundUpdate.objects.filter(round=zero, dispatched_at__isnull=False).exists()

    TrainingRound.objects.filter(pk=zero.pk).update(started_at=timezone.now() - timedelta(seconds=5))
    assert rounds.sweep_rounds() == {"resent": 2, "closed": 0}
    assert [m["kwargs"]["round"] for m in broker.take("hospital.general-hospital")] == [0]
    assert RoundUpdate.objects.filter(round=zero, dispatched_at__isnull=False).count() == 2
    assert rounds.sweep_rounds() == {"resent": 0, "closed": 0}

    _past_deadline(zero)
    assert rounds.sweep_rounds() == {"resent": 0, "closed": 1}
    job.refresh_from_db()
    assert job.failure_reason == "round 0: 0 of quorum 2 updates by the timeout"


def test_a_hospital_silent_after_its_task_was_sent_gets_it_again(world: RoundsWorld, broker: Broker) -> None:
    """A worker killed mid-task may take its message with it (the SQLite transport never returns a taken
    message; Redis only after an hour): the sweep sends the task again to a hospital still silent after
    TRAINING_REDISPATCH_AFTER_S, and not to one whose task went out a moment ago."""
    job = world.job()
    with world.committed():
        rounds.start_job(job=job)
    zero = TrainingRound.objects.get(job=job, number=0)
    broker.take("hospital.general-hospital")
    assert rounds.sweep_rounds()["resent"] == 0  # sent a moment ago: not silent yet

    long_ago = timezone.now() - timedelta(seconds=3600)
    TrainingRound.objects.filter(pk=zero.pk).update(started_at=long_ago)
    RoundUpdate.objects.filter(round=zero, hospital=world.hospital("general")).update(dispatched_at=long_ago)
    assert rounds.sweep_rounds()["resent"] == 1  # the silent one only
    assert [m["kwargs"]["round"] for m in broker.take("hospital.general-hospital")] == [0]
    assert rounds.sweep_rounds()["resent"] == 0  # sent again just now
