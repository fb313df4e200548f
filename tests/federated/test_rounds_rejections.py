"""Every refusal of a submitted update (DESIGN14 step 6) is raised with its code and recorded: on the
hospital's row when the hospital signed it, as an UpdateRejection when the sender cannot be attributed. A
rejected hospital may send a corrected update while the round runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from eth_account import Account

from ehr import store
from federated import rounds, weights_format
from federated.models import JobHospital, RoundUpdate, TrainingJob, TrainingRound, UpdateRejection
from healthhash.errors import DomainError
from tests.federated.rounds_setup import (  # noqa: F401  (fixtures)
    Broker,
    RoundsWorld,
    _test_kek,
    broker_fixture,
    registry,
    training_registry,
    world_fixture,
)

pytestmark = pytest.mark.django_db

Case = Callable[[RoundsWorld, TrainingJob], dict[str, Any]]


def _nan_weights(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    weights = world.base_weights(job, 1)
    name = next(iter(n for n in weights if n.startswith("layers")))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] = float("nan")
    return world.update(job, "general", weights=weights)


def _wrong_shape(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    weights = world.base_weights(job, 1)
    weights["layers.0.weight"] = torch.zeros(2, 30)
    return world.update(job, "general", weights=weights)


def _hash_of_other_bytes(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    body = world.update(job, "general", shift=0.1)
    other = weights_format.dump({n: t + 0.2 for n, t in world.base_weights(job, 1).items()})
    return world.update(
        job,
        "general",
        shift=0.1,
        weights_hash=bytes.fromhex(weights_format.sha256_hex(other)[2:]),
    ) | {"cid": body["cid"]}


def _cid_of_other_bytes(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    other = store.add(weights_format.dump({n: t + 0.2 for n, t in world.base_weights(job, 1).items()}))
    return world.update(job, "general") | {"cid": other}


# (case, code, HTTP status): the hospital signed each, so each is recorded on its row.
ATTRIBUTABLE: dict[str, tuple[Case, str, int]] = {
    "wrong pinned block": (
        lambda w, j: w.update(
            j, "general", pinned_block=TrainingRound.objects.get(job=j, number=1).pinned_block - 1
        ),
        "wrong_pinned_block",
        400,
    ),
    "another plan hash": (lambda w, j: w.update(j, "general", plan_hash=b"\x11" * 32), "plan_mismatch", 400),
    "deadline too close": (lambda w, j: w.update(j, "general", deadline=1), "deadline_expired", 400),
    "a patient outside the release": (
        lambda w, j: w.update(j, "general", patients=[*w.patients_of("general"), w.address("outsider")]),
        "patients_not_released",
        400,
    ),
    "another hospital's patient": (
        lambda w, j: w.update(
            j, "general", patients=[w.patients_of("general")[0], w.patients_of("clinic")[0]]
        ),
        "patients_not_released",
        400,
    ),
    "patient root of other patients": (
        lambda w, j: w.update(j, "general", patient_root=b"\x22" * 32),
        "patient_root_mismatch",
        400,
    ),
    "samples not the patient count": (
        lambda w, j: w.update(j, "general", samples=3),
        "sample_count_mismatch",
        400,
    ),
    "weights hash of other bytes": (_hash_of_other_bytes, "weights_hash_mismatch", 400),
    "cid of other bytes": (_cid_of_other_bytes, "cid_mismatch", 400),
    "weights not in the store": (
        lambda w, j: w.update(j, "general", store_bytes=False),
        "weights_missing",
        400,
    ),
    "NaN weights": (_nan_weights, "invalid_update", 400),
    "weights of another shape": (_wrong_shape, "invalid_update", 400),
}


@pytest.mark.parametrize("case", sorted(ATTRIBUTABLE))
def test_a_bad_update_is_rejected_on_the_hospitals_row(world: RoundsWorld, broker: Broker, case: str) -> None:
    make, code, status = ATTRIBUTABLE[case]
    job = world.job()
    training_round = world.running_train_round(job, broker)
    with pytest.raises(DomainError) as refused:
        rounds.receive_update(**make(world, job))
    assert (refused.value.code, refused.value.status_code) == (code, status)
    row = RoundUpdate.objects.get(round=training_round, hospital=world.personas.general)
    assert row.status == RoundUpdate.Status.REJECTED
    assert row.reason_code == code and row.reason_detail
    assert row.cid and row.signature  # what was sent is kept for the record
    assert row.outbox_item is None and not row.patients.exists()
    training_round.refresh_from_db()
    assert training_round.status == TrainingRound.Status.RUNNING

    # The hospital may still send a correct update this round.
    accepted, _ = rounds.receive_update(**world.update(job, "general"))
    assert accepted.pk == row.pk and accepted.status == RoundUpdate.Status.ACCEPTED
    assert accepted.reason_code == ""


def test_a_plan_not_approved_on_chain_is_rejected(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    training_round = world.running_train_round(job, broker)
    # As the indexer leaves it when a later on-chain approval of another plan replaced this one.
    JobHospital.objects.filter(job=job, hospital=world.personas.general).update(
        approval=JobHospital.Approval.PENDING, approval_plan_hash=""
    )
    with pytest.raises(DomainError) as refused:
        rounds.receive_update(**world.update(job, "general"))
    assert refused.value.code == "plan_not_approved"
    row = RoundUpdate.objects.get(round=training_round, hospital=world.personas.general)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.REJECTED, "plan_not_approved")


def _signed_by_a_stranger(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general", signer=Account.create())


def _signed_by_the_other_hospital(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general", signer=world.key("clinic"))


def _garbled_signature(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general") | {"signature": "0x1234"}


def _unknown_job(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general", job_id=b"\x33" * 32)


def _unknown_round(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general", round=7)


def _moments_round(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    return world.update(job, "general", round=0)


def _malformed_message(world: RoundsWorld, job: TrainingJob) -> dict[str, Any]:
    body = world.update(job, "general")
    body["message"] = {k: v for k, v in body["message"].items() if k != "patientRoot"}
    return body


# (case, code, HTTP status): nothing the hospital answered, so an UpdateRejection and its row untouched.
UNATTRIBUTABLE: dict[str, tuple[Case, str, int]] = {
    "signed by a stranger": (_signed_by_a_stranger, "bad_signature", 403),
    "signed by another hospital": (_signed_by_the_other_hospital, "bad_signature", 403),
    "garbled signature": (_garbled_signature, "bad_signature", 403),
    "unknown job": (_unknown_job, "unknown_job", 404),
    "unknown round": (_unknown_round, "unknown_round", 404),
    "the moments round": (_moments_round, "wrong_round_kind", 409),
    "a message lacking a member": (_malformed_message, "bad_payload", 400),
}


@pytest.mark.parametrize("case", sorted(UNATTRIBUTABLE))
def test_an_unattributable_update_is_recorded_apart(world: RoundsWorld, broker: Broker, case: str) -> None:
    make, code, status = UNATTRIBUTABLE[case]
    job = world.job()
    training_round = world.running_train_round(job, broker)
    with pytest.raises(DomainError) as refused:
        rounds.receive_update(**make(world, job))
    assert (refused.value.code, refused.value.status_code) == (code, status)
    rejection = UpdateRejection.objects.get()
    assert rejection.reason_code == code and rejection.detail.startswith("update: ")
    row = RoundUpdate.objects.get(round=training_round, hospital=world.personas.general)
    assert row.status == RoundUpdate.Status.DISPATCHED and row.reason_code == ""


def test_a_hospital_outside_the_job_cannot_send_an_update(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(hospitals=("general",), quorum=1)
    world.running_train_round(job, broker)
    with pytest.raises(rounds.HospitalNotInJob) as refused:
        rounds.receive_update(**world.update(job, "clinic"))
    assert refused.value.status_code == 403
    rejection = UpdateRejection.objects.get()
    assert rejection.job == job and rejection.hospital_id == world.personas.clinic.hospital_id
    assert rejection.round_number == 1 and rejection.reason_code == "hospital_not_in_job"


def test_an_update_after_the_round_closed_is_refused(world: RoundsWorld, broker: Broker) -> None:
    job = world.job(quorum=1)
    training_round = world.running_train_round(job, broker)
    with world.committed():
        rounds.receive_update(**world.update(job, "general"))
        rounds.aggregate_round(job=job, number=1)
    with pytest.raises(rounds.RoundNotRunning):
        rounds.receive_update(**world.update(job, "clinic"))
    late = RoundUpdate.objects.get(round=training_round, hospital=world.personas.clinic)
    assert late.status == RoundUpdate.Status.STRAGGLER
    assert UpdateRejection.objects.get().reason_code == "round_not_running"


def test_the_release_and_moments_need_the_hospitals_own_signature(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    with world.committed():
        rounds.start_job(job=job)
    general = world.personas.general
    with pytest.raises(rounds.BadSignature):
        rounds.release_for_worker(
            job_id=job.job_id,
            round_number=0,
            hospital_id=general.hospital_id,
            signer=Account.create().address,
        )
    with pytest.raises(rounds.BadSignature):
        rounds.receive_moments(
            job_id=job.job_id,
            round_number=0,
            hospital_id=general.hospital_id,
            signer=world.personas.clinic.account_address,
            moments=world.moments_of("general"),
        )
    assert sorted(UpdateRejection.objects.values_list("detail", flat=True))[0].startswith("moments: ")
    assert UpdateRejection.objects.filter(reason_code="bad_signature").count() == 2


def test_bad_moments_are_rejected_on_the_row(world: RoundsWorld, broker: Broker) -> None:
    job = world.job()
    with world.committed():
        rounds.start_job(job=job)
    general = world.personas.general
    moments = world.moments_of("general") | {"mean": [1.0] * 29}
    with pytest.raises(DomainError) as refused:
        rounds.receive_moments(
            job_id=job.job_id,
            round_number=0,
            hospital_id=general.hospital_id,
            signer=general.account_address,
            moments=moments,
        )
    assert refused.value.code == "invalid_moments"
    row = RoundUpdate.objects.get(round__job=job, round__number=0, hospital=general)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.REJECTED, "invalid_moments")
    assert world.send_moments(job, "general").status == RoundUpdate.Status.ACCEPTED
