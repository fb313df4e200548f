"""The hospital worker's round logic against the real thing: the API in a live server (its HTTP calls go
through the real views and rounds), anvil with TrainingRegistry, the local content store, the outbox
relayer and the indexer. The worker is connected exactly as `manage.py hospital_worker` connects it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from eth_account import Account

from access.models import AccessAction, AccessLogEntry
from contracts import client
from contracts.drain import drain_outbox
from federated import rounds
from federated.models import ModelVersion, RoundUpdate, TrainingJob, UpdatePatient
from federated.plan import canonical_json
from federated.worker import local_round as local_round_module
from federated.worker import runtime
from federated.worker.local_round import (
    fetch_global_weights,
    load_round_data,
    run_round,
    train_and_submit,
    train_privately,
)
from federated.worker.round_task import RoundTask
from federated.worker.runtime import HospitalWorker, WorkerStartRefused
from federated.worker.tasks import local_round
from tests.federated.release_setup import _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.federated.worker_setup import (  # noqa: F401  (fixtures)
    Federation,
    federation_fixture,
    registry_fixture,
    training_registry_fixture,
)

pytestmark = pytest.mark.django_db(transaction=True)

DP = {"noise_multiplier": 0.8, "max_grad_norm": 1.0, "delta": 1e-5}


def _through_round_zero(fed: Federation, job: TrainingJob, *workers: HospitalWorker) -> TrainingJob:
    """Round 0 at every hospital of the job (their moments; by `workers` where given), aggregated into model
    version 0; round 1 is then running."""
    given = {worker.slug: worker for worker in workers}
    for hospital in job.hospitals.all():
        worker = given.get(hospital.slug) or fed.worker(hospital)
        outcome = run_round(fed.task(job, 0, hospital), worker)
        assert outcome.status == "moments_sent", outcome
    assert rounds.aggregate_round(job=job, number=0) is not None
    job.refresh_from_db()
    assert job.current_round == 1
    return job


def _released_patients(fed: Federation) -> set[str]:
    addresses = [fed.world.address(name) for name in fed.world.patients]
    return set(
        AccessLogEntry.objects.filter(patient_address__in=addresses, action=AccessAction.RELEASE).values_list(
            "patient_address", flat=True
        )
    )


def test_a_round_update_is_accepted_with_its_patients_metrics_and_timings(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = federation
    general = fed.personas.general
    worker = fed.worker(general)
    job = _through_round_zero(fed, fed.start(fed.job()), worker)
    moments_row = fed.row(job, 0, general)
    assert moments_row.status == RoundUpdate.Status.ACCEPTED
    assert moments_row.moments is not None and moments_row.moments["count"] == 1
    task = fed.task(job, 1, general)
    asked: list[int | None] = []  # a spy on the worker's real API client: what each release asked for
    real_release = worker.api.release

    def release(**kwargs: Any) -> Any:
        asked.append(kwargs.get("known_block"))
        return real_release(**kwargs)

    monkeypatch.setattr(worker.api, "release", release)
    # Decrypt once per job: round 1's release is a delta from round 0's, served from its cache.
    assert load_round_data(task, worker).dataset.records_read == 0
    assert asked == [fed.task(job, 0, general).pinned_block]

    outcome = run_round(task, worker)

    assert outcome.status == "accepted", outcome
    row = fed.row(job, 1, general)
    assert row.status == RoundUpdate.Status.ACCEPTED
    trained_on = fed.training_patients(seed=task.seed)  # one of p0, p1; the other is the validation row
    assert len(trained_on) == 1 and row.sample_count == 1
    listed = UpdatePatient.objects.filter(update=row).values_list("patient_address", flat=True)
    assert set(listed) == trained_on
    assert row.metrics["validation"]["count"] == 1 and row.metrics["train_loss"] is not None
    assert set(row.timings) == {"release_s", "dataset_s", "train_s", "upload_s"}
    assert row.epsilon is None
    assert worker.store.has(row.cid)
    # Every patient of the release is in the access log; p3 (TREATMENT consent only) is not released.
    assert _released_patients(fed) == {fed.world.address(n) for n in ("p0", "p1", "p2")}

    drain_outbox()
    row.refresh_from_db()
    assert row.chain_status == "confirmed"
    stored = client.call("TrainingRegistry", "storedUpdateHash", bytes.fromhex(row.update_id[2:]))
    assert int.from_bytes(bytes(stored), "big") != 0


def test_a_plan_not_approved_on_chain_is_refused_before_any_data_is_asked_for(federation: Federation) -> None:
    fed = federation
    general = fed.personas.general
    job = fed.start(fed.job())
    other_plan = fed.approve_other_plan_on_chain(job, general)  # the admin withdrew approval mid-job

    outcome = run_round(fed.task(job, 0, general), fed.worker(general))

    assert outcome.status == "refused" and outcome.reason == "plan_not_approved"
    assert other_plan in outcome.detail
    row = fed.row(job, 0, general)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.REFUSED, "plan_not_approved")
    assert _released_patients(fed) == set()  # the worker never asked for a release
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and "plan_not_approved" in job.failure_reason


def test_a_tampered_plan_document_is_refused_and_so_is_a_rehashed_one(federation: Federation) -> None:
    fed = federation
    general, clinic = fed.personas.general, fed.personas.clinic
    job = fed.start(fed.job(hospitals=[general, clinic], quorum=1))

    tampered = fed.kwargs(job, 0, general)
    tampered["plan"]["hyper_parameters"]["lr"] = 10.0  # the plan hash still is the approved one
    outcome = run_round(RoundTask.from_kwargs(tampered), fed.worker(general))
    assert (outcome.status, outcome.reason) == ("refused", "plan_mismatch")

    # A coordinator that rehashes its changed plan is caught on chain: the hospital never approved it.
    rehashed = fed.kwargs(job, 0, clinic)
    rehashed["plan"]["dp"] = {"noise_multiplier": 0.1, "max_grad_norm": 100.0, "delta": 0.1}
    rehashed["plan_hash"] = "0x" + hashlib.sha256(canonical_json(rehashed["plan"])).hexdigest()
    outcome = run_round(RoundTask.from_kwargs(rehashed), fed.worker(clinic))
    assert (outcome.status, outcome.reason) == ("refused", "plan_not_approved")

    assert fed.row(job, 0, general).reason_code == "plan_mismatch"
    assert fed.row(job, 0, clinic).reason_code == "plan_not_approved"
    assert _released_patients(fed) == set()


def test_a_hospital_without_consented_records_sits_the_round_out(federation: Federation) -> None:
    fed = federation
    general, clinic = fed.personas.general, fed.personas.clinic
    job = fed.start(fed.job(hospitals=[general, clinic], quorum=1))

    outcome = run_round(fed.task(job, 0, clinic), fed.worker(clinic))

    assert (outcome.status, outcome.reason) == ("refused", "no_consented_records")
    row = fed.row(job, 0, clinic)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.SAT_OUT, "no_consented_records")
    # General still takes part; the round goes on without City Clinic.
    assert run_round(fed.task(job, 0, general), fed.worker(general)).status == "moments_sent"
    version = rounds.aggregate_round(job=job, number=0)
    assert version is not None and version.metrics["samples"] == 1


def test_a_round_over_the_privacy_budget_is_refused_with_its_reason_and_epsilon(
    federation: Federation,
) -> None:
    fed = federation
    general = fed.personas.general
    job = _through_round_zero(fed, fed.start(fed.job(dp=DP)))
    worker = fed.worker(general, epsilon_budget=0.5)

    outcome = run_round(fed.task(job, 1, general), worker)

    assert (outcome.status, outcome.reason) == ("refused", "privacy_budget_exceeded")
    assert outcome.epsilon is not None and outcome.epsilon > 0.5
    row = fed.row(job, 1, general)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.REFUSED, "privacy_budget_exceeded")
    assert f"ε={outcome.epsilon:.3g}" in row.reason_detail and "budget ε=0.5" in row.reason_detail
    assert worker.ledger.totals().rounds == 0  # refused before training: nothing reserved, nothing spent
    assert not ModelVersion.objects.filter(job=job, round=1).exists()


def test_a_redelivered_task_is_harmless(federation: Federation) -> None:
    """A task runs again when its worker died before the ack. Killed before its POST: the update goes in
    then. Killed after it: the server has the update, so the release is refused and nothing is redone.
    An answer lost on the way back: the same update again is a duplicate (training is seeded)."""
    fed = federation
    general, clinic = fed.personas.general, fed.personas.clinic
    fed.grant_clinic_training("p3")
    job = _through_round_zero(fed, fed.start(fed.job(hospitals=[general, clinic], quorum=2)))
    worker = fed.worker(general)
    task = fed.task(job, 1, general)
    data = load_round_data(task, worker)
    train_privately(task, worker, data, fetch_global_weights(task, worker))  # killed before the POST

    accepted = run_round(task, worker)
    again = train_and_submit(task, worker, data)
    redelivered = run_round(task, worker)

    assert (accepted.status, again.status) == ("accepted", "duplicate")
    assert (redelivered.status, redelivered.reason) == ("closed", "already_answered")
    row = fed.row(job, 1, general)
    assert row.status == RoundUpdate.Status.ACCEPTED and UpdatePatient.objects.filter(update=row).count() == 1
    # City Clinic's update completes the quorum; its own redelivery is refused (answered; round moved on).
    clinic_task = fed.task(job, 1, clinic)
    assert run_round(clinic_task, fed.worker(clinic)).status == "accepted"
    late = run_round(clinic_task, fed.worker(clinic))
    assert late.status == "closed" and late.reason in ("already_answered", "round_not_running")


def test_a_redelivered_private_round_meets_its_first_update_and_is_charged_twice(
    federation: Federation,
) -> None:
    """Under DP a repeat draws new noise: other weights for a taken round are a 409 update_conflict, which the
    worker counts as done; the ledger charges both runs (the second output left the worker too)."""
    fed = federation
    general, clinic = fed.personas.general, fed.personas.clinic
    fed.grant_clinic_training("p3")
    job = _through_round_zero(fed, fed.start(fed.job(hospitals=[general, clinic], quorum=2, dp=DP)))
    worker = fed.worker(general, epsilon_budget=100.0)
    task = fed.task(job, 1, general)
    data = load_round_data(task, worker)

    first = train_and_submit(task, worker, data)
    second = train_and_submit(task, worker, data)

    assert (first.status, second.status) == ("accepted", "conflict")
    assert first.epsilon is not None and first.epsilon > 0
    row = fed.row(job, 1, general)
    assert row.epsilon == pytest.approx(first.epsilon)
    ledger = json.loads(worker.ledger.path.read_text())
    assert [entry["state"] for entry in ledger["rounds"]] == ["spent", "spent"]


def test_a_fault_of_the_worker_is_reported_at_once_without_its_message(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug or an exhausted machine at the worker: the coordinator hears `worker_error` now, not at the
    timeout, and the detail names the error's type only (its message could hold data)."""
    fed = federation
    general = fed.personas.general
    job = _through_round_zero(fed, fed.start(fed.job()))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("p0's mean radius is 17.99")

    monkeypatch.setattr(local_round_module, "evaluate", broken)
    outcome = run_round(fed.task(job, 1, general), fed.worker(general))

    assert (outcome.status, outcome.reason) == ("refused", "worker_error")
    row = fed.row(job, 1, general)
    assert (row.status, row.reason_code) == (RoundUpdate.Status.REFUSED, "worker_error")
    assert "RuntimeError" in row.reason_detail and "17.99" not in row.reason_detail


def test_the_task_retries_while_the_api_is_down_and_then_gives_up(federation: Federation) -> None:
    fed = federation
    general = fed.personas.general
    job = fed.start(fed.job())
    worker = fed.worker(general)
    kwargs: dict[str, Any] = fed.kwargs(job, 0, general)
    worker.api.base_url = "http://127.0.0.1:9"  # nothing listens there: connection refused
    runtime.install(worker)
    try:
        result = local_round.apply(kwargs=kwargs).get()
    finally:
        runtime.install(None)
    assert result["status"] == "gave_up" and "does not answer" in result["detail"]
    assert fed.row(job, 0, general).status == RoundUpdate.Status.DISPATCHED


def test_a_worker_with_another_hospitals_key_does_not_start(federation: Federation) -> None:
    fed = federation
    key_file = fed.tmp_path / "clinic.key"
    key_file.write_text("0x" + bytes(fed.personas.chain.accounts.other_hospital_account.key).hex())
    key_file.chmod(0o600)
    with pytest.raises(CommandError, match="not started: the key file holds account"):
        call_command(
            "hospital_worker", hospital="general-hospital", key_file=str(key_file), api_url=fed.api_url
        )
    with pytest.raises(WorkerStartRefused, match="does not know hospital"):
        runtime.connect_worker(
            slug="no-such-hospital",
            account=Account.create(),
            api_url=fed.api_url,
            state_dir=fed.tmp_path / "state",
            store_dir=fed.tmp_path / "store",
        )
