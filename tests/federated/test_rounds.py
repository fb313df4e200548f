"""A training job's rounds end to end at the service level, on the real stack: anvil with a TrainingRegistry,
the outbox relayer and the indexer, the content store, dataset releases, updates signed with the hospitals'
own keys. Hospital workers are played by the test (federated/worker has its own process-level tests)."""

from __future__ import annotations

import math

import pytest
import torch

from contracts import client
from contracts.drain import drain_outbox
from contracts.messages import Update
from federated import aggregation, rounds, testset, weights_format
from federated.models import ModelVersion, RoundUpdate, TrainingJob, TrainingRound, UpdatePatient
from federated.networks import FeatureMoments, initial_weights
from federated.plan import plan_document
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


def test_a_job_runs_moments_then_training_rounds_to_published_versions(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job(rounds=1)
    with world.committed():
        rounds.start_job(job=job)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING
    zero = TrainingRound.objects.get(job=job, number=0)
    assert zero.kind == TrainingRound.Kind.MOMENTS and zero.status == TrainingRound.Status.RUNNING

    # Each hospital's queue got its task; the server's queue the round's timeout.
    for which, queue in (("general", "hospital.general-hospital"), ("clinic", "hospital.city-clinic")):
        (task,) = broker.take(queue)
        assert task["task"] == "federated.worker.local_round"
        kwargs = task["kwargs"]
        assert kwargs["job_id"] == job.job_id and kwargs["round"] == 0 and kwargs["kind"] == "moments"
        assert kwargs["hospital_id"] == world.hospital(which).hospital_id
        assert kwargs["plan"] == plan_document(job) and kwargs["plan_hash"] == job.plan_hash
        assert kwargs["pinned_block"] == zero.pinned_block and kwargs["global"] is None
        assert kwargs["seed"] == job.seed and kwargs["deadline"] > zero.deadline_at.timestamp()
    (close,) = broker.take(SERVER_QUEUE)
    assert close["task"] == "federated.tasks.close_round" and close["eta"] is not None
    assert RoundUpdate.objects.filter(round=zero, dispatched_at__isnull=False).count() == 2

    # The release a worker asks for holds its consented patients only.
    sealed = rounds.release_for_worker(
        job_id=job.job_id,
        round_number=0,
        hospital_id=world.personas.general.hospital_id,
        signer=world.personas.general.account_address,
    )
    assert sealed.patient_count == 2 and sealed.pinned_block == zero.pinned_block

    world.send_moments(job, "general")
    assert broker.take(SERVER_QUEUE) == []  # quorum 2: one answer aggregates nothing
    world.send_moments(job, "clinic")
    zero.refresh_from_db()
    assert zero.status == TrainingRound.Status.AGGREGATING
    (aggregate,) = broker.take(SERVER_QUEUE)
    assert aggregate["task"] == "federated.tasks.aggregate_round"
    assert aggregate["kwargs"] == {"job_pk": job.pk, "number": 0}

    with world.committed():
        version0 = rounds.aggregate_round(job=job, number=0)
    assert version0 is not None and version0.round == 0
    pooled = FeatureMoments.pooled(
        [FeatureMoments.from_json(world.moments_of(w)) for w in ("general", "clinic")]
    )
    expected0 = initial_weights(spec=job.model_spec, seed=job.seed, moments=pooled)
    stored0 = aggregation.load_weights(cid=version0.cid, weights_hash=version0.weights_hash)
    for name, tensor in expected0.items():
        assert torch.equal(stored0[name], tensor)
    assert version0.metrics["test"]["count"] == len(testset.held_out().rows)
    assert version0.updates_root == aggregation.ZERO_ROOT

    one = TrainingRound.objects.get(job=job, number=1)
    assert one.kind == TrainingRound.Kind.TRAIN and one.status == TrainingRound.Status.RUNNING
    (task,) = broker.take("hospital.general-hospital")
    assert task["kwargs"]["global"] == {"cid": version0.cid, "sha256": version0.weights_hash}

    bodies = {
        "general": world.update(job, "general", shift=0.1),
        "clinic": world.update(job, "clinic", shift=-0.3),
    }
    for which, body in bodies.items():
        with world.committed():
            row, duplicate = rounds.receive_update(**body)
        assert row.status == RoundUpdate.Status.ACCEPTED and not duplicate
        assert set(UpdatePatient.objects.filter(update=row).values_list("patient_address", flat=True)) == set(
            world.patients_of(which)
        )
    one.refresh_from_db()
    assert one.status == TrainingRound.Status.AGGREGATING

    with world.committed():
        version1 = rounds.aggregate_round(job=job, number=1)
    assert version1 is not None
    # FedAvg by sample count (2 and 2): the mean of the two shifted models.
    new = aggregation.load_weights(cid=version1.cid, weights_hash=version1.weights_hash)
    for name, tensor in stored0.items():
        torch.testing.assert_close(new[name], tensor + (0.1 - 0.3) / 2)
    assert version1.report["coefficients"] == {"general-hospital": 0.5, "city-clinic": 0.5}
    assert version1.metrics["samples"] == 4
    assert version1.updates.count() == 2

    one.refresh_from_db()
    job.refresh_from_db()
    assert one.status == TrainingRound.Status.DONE and job.status == TrainingJob.Status.DONE
    assert one.metrics["samples"] == {"general-hospital": 2, "city-clinic": 2}
    assert one.metrics["validation"]["general-hospital"]["f1"] is None  # NaN stored as null
    assert one.timings["local_training_s"] == 0.5 and one.timings["wall_s"] > 0
    assert one.timings["dispatch_s"] is not None and one.timings["aggregation_s"] >= 0

    # The outbox carries both updates and both versions to the chain; the indexer confirms them.
    drain_outbox()
    for row in RoundUpdate.objects.filter(round=one):
        assert row.chain_status == "confirmed" and row.chain_block is not None, row.chain_error
        stored = client.call("TrainingRegistry", "storedUpdateHash", bytes.fromhex(row.update_id[2:]))
        assert row.outbox_item is not None
        message = Update.from_message(row.outbox_item.payload["message"])
        assert bytes(stored) == message.update_hash
    for version in ModelVersion.objects.filter(job=job):
        assert version.chain_status == "confirmed" and version.chain_tx.startswith("0x")
    assert version1.updates_root == aggregation.updates_root(
        RoundUpdate.objects.filter(round=one).values_list("update_id", flat=True)
    )
    assert weights_format.sha256_hex(store_bytes(version1.cid)) == version1.weights_hash
    assert math.isfinite(version1.metrics["test"]["loss"])


def store_bytes(cid: str) -> bytes:
    from ehr import store

    return store.cat(cid)


def test_an_update_sent_again_is_a_duplicate_and_other_content_a_conflict(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job()
    world.running_train_round(job, broker)
    body = world.update(job, "general")
    first, duplicate = rounds.receive_update(**body)
    assert not duplicate
    again, duplicate = rounds.receive_update(**body)
    assert duplicate and again.pk == first.pk
    with pytest.raises(rounds.UpdateConflict) as conflict:
        rounds.receive_update(**world.update(job, "general", shift=0.2))
    assert conflict.value.status_code == 409
    first.refresh_from_db()
    assert first.status == RoundUpdate.Status.ACCEPTED and first.outbox_item is not None
    assert job.update_rejections.get().reason_code == "update_conflict"

    # A worker that lost the answer sends again after the round moved on: still a duplicate, not an error.
    with world.committed():
        rounds.receive_update(**world.update(job, "clinic"))
        rounds.aggregate_round(job=job, number=1)
    late, duplicate = rounds.receive_update(**body)
    assert duplicate and late.pk == first.pk
    assert world.send_moments(job, "general").status == RoundUpdate.Status.ACCEPTED  # round 0's, again


def test_a_round_aggregates_once_however_often_it_is_asked(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(rounds=1)
    world.running_train_round(job, broker)
    for which in ("general", "clinic"):
        rounds.receive_update(**world.update(job, which))
    first = rounds.aggregate_round(job=job, number=1)
    second = rounds.aggregate_round(job=job, number=1)
    assert first is not None and second is not None and first.pk == second.pk
    assert ModelVersion.objects.filter(job=job).count() == 2
    from contracts.models import OutboxItem

    assert OutboxItem.objects.filter(kind="training.model_version").count() == 2
