"""When a job runs (now, at a time, periodically with django-celery-beat), and `manage.py train`."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from federated import rounds, scheduling
from federated.models import ModelVersion, TrainingJob, TrainingRound
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


def _finish_round(world: RoundsWorld, job: TrainingJob, number: int) -> None:
    """Both hospitals answer round `number` and it is aggregated (as the server worker would)."""
    with world.committed():
        if number == 0:
            world.send_moments(job, "general")
            world.send_moments(job, "clinic")
        else:
            for which in ("general", "clinic"):
                rounds.receive_update(**world.update(job, which, number=number))
        assert rounds.aggregate_round(job=job, number=number) is not None


def test_a_periodic_job_runs_its_rounds_again_at_each_firing(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(rounds=1)
    with pytest.raises(Forbidden):
        scheduling.schedule_job(
            job=job, admin=world.personas.bob, schedule={"kind": "periodic", "every_s": 60}
        )
    with world.committed():
        job = scheduling.schedule_job(
            job=job, admin=world.personas.hadmin, schedule={"kind": "periodic", "every_s": 60}
        )
    assert job.status == TrainingJob.Status.RUNNING  # the first run starts at once
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert task.task == "federated.tasks.run_scheduled_job" and task.interval.every == 60
    assert json.loads(task.kwargs) == {"job_pk": job.pk} and task.enabled

    _finish_round(world, job, 0)
    _finish_round(world, job, 1)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SCHEDULED  # waiting for the next firing
    first_block = TrainingRound.objects.get(job=job, number=1).pinned_block

    world.revoke_training("g1")  # a later run pins a later block: g1 is out of it
    with world.committed():
        scheduling.run_scheduled_job(job=job)
    job.refresh_from_db()
    two = TrainingRound.objects.get(job=job, number=2)
    assert job.status == TrainingJob.Status.RUNNING and job.current_round == 2
    assert two.kind == TrainingRound.Kind.TRAIN and two.pinned_block > first_block
    assert scheduling.run_scheduled_job(job=job).current_round == 2  # a firing mid-run starts nothing
    with pytest.raises(Exception) as refused:
        rounds.receive_update(**world.update(job, "general", number=2))
    assert refused.value.code == "patients_not_released"  # type: ignore[attr-defined]
    with world.committed():
        rounds.receive_update(**world.update(job, "general", number=2, patients=[world.address("g0")]))
        rounds.receive_update(**world.update(job, "clinic", number=2))
        rounds.aggregate_round(job=job, number=2)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SCHEDULED
    assert list(ModelVersion.objects.filter(job=job).values_list("round", flat=True)) == [0, 1, 2]

    rounds.cancel_job(job=job, admin=world.personas.hadmin)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_a_job_at_a_time_waits_and_starts_when_due(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    at = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    with world.committed():
        job = scheduling.schedule_job(
            job=job, admin=world.personas.hadmin, schedule={"kind": "at", "at": at.isoformat()}
        )
    assert job.status == TrainingJob.Status.SCHEDULED and not job.training_rounds.exists()
    (message,) = broker.take(SERVER_QUEUE)
    assert message["task"] == "federated.tasks.run_scheduled_job" and message["kwargs"] == {"job_pk": job.pk}
    assert message["eta"] is not None and message["eta"].startswith(at.isoformat()[:19])
    assert scheduling.due_jobs() == []

    # The ETA message was lost: once the time has passed the sweep finds the job due.
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    TrainingJob.objects.filter(pk=job.pk).update(schedule={"kind": "at", "at": past})
    (due,) = scheduling.due_jobs()
    with world.committed():
        scheduling.run_scheduled_job(job=due)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING and job.training_rounds.get().number == 0


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"kind": "weekly"}, "schedule.kind"),
        ({"kind": "periodic", "every_s": 1}, "schedule.every_s"),
        ({"kind": "at", "at": "tomorrow"}, "schedule.at"),
        ({"kind": "at", "at": "2030-01-01T00:00:00"}, "schedule.at"),  # no time zone
        ({"kind": "now", "every_s": 60}, "schedule.every_s"),
    ],
)
def test_a_bad_schedule_is_a_400_naming_its_member(world: RoundsWorld, schedule: dict, field: str) -> None:
    job = world.job()
    with pytest.raises(scheduling.InvalidSchedule) as refused:
        scheduling.schedule_job(job=job, admin=world.personas.hadmin, schedule=schedule)
    assert refused.value.status_code == 400 and refused.value.field == field


def test_train_starts_a_ready_job_and_refuses_an_unapproved_one(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    out = io.StringIO()
    with world.committed():
        call_command("train", "--job", str(job.pk), stdout=out)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING and "running" in out.getvalue()
    assert [m["kwargs"]["round"] for m in broker.take("hospital.city-clinic")] == [0]

    with pytest.raises(CommandError, match="no training job"):
        call_command("train", "--job", "0x" + "ab" * 32, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_train_wait_follows_the_rounds_and_fails_with_the_job(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(rounds=2)
    out = io.StringIO()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            call_command(
                "train", "--job", job.job_id, "--wait", "--poll", "0.05", "--timeout", "120", stdout=out
            )
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            connection.close()

    watcher = threading.Thread(target=follow)
    watcher.start()
    while not TrainingRound.objects.filter(job=job).exists():
        watcher.join(timeout=0.05)
    _finish_round(world, job, 0)
    _finish_round(world, job, 1)
    waited = 0.0
    while "round 2/2 [" not in out.getvalue() and waited < 30:  # the running round's progress bar
        watcher.join(timeout=0.05)
        waited += 0.05
    TrainingRound.objects.filter(job=job, number=2).update(deadline_at=timezone.now() - timedelta(seconds=1))
    rounds.close_round(job=job, number=2)  # nobody answered round 2
    watcher.join(timeout=60)
    assert not watcher.is_alive()

    text = out.getvalue()
    assert "moments: F1" in text and "round 1: F1" in text and "2 hospitals, 4 samples" in text
    assert "round 2: failed: round 2: 0 of quorum 2 updates by the timeout" in text
    assert "round 2/2 [" in text and "0/2 hospitals answered" in text
    (error,) = errors
    assert isinstance(error, CommandError) and "failed" in str(error)
