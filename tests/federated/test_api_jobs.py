"""The jobs API (/api/training/jobs...) for every persona: only the admins of a job's participating hospitals
see it or act on it; to everyone else it does not exist (404 unknown_job). Real stack: anvil, the relayer
and indexer for plan approvals, the database; rounds are written straight into the models."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from rest_framework.test import APIClient

from contracts.drain import drain_outbox
from federated.models import JobHospital, RoundUpdate, TrainingJob
from tests.conftest import PASSWORD, Personas
from tests.federated.api_setup import (  # noqa: F401  (fixtures)
    _registry_deployed,
    make_job,
    trained_job,
    training_registry,
)
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.healthhash.test_api_errors import assert_error

pytestmark = pytest.mark.django_db

OUTSIDERS = ["other_hadmin", "bob", "carol", "alice", "cadmin"]  # for a job of General Hospital alone


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "wdbc",
        "hospitals": ["general-hospital", "city-clinic"],
        "model": {"name": "mlp", "hidden": [8]},
        "strategy": {"name": "fedavg"},
        "local_epochs": 1,
        "batch_size": 16,
        "lr": 0.05,
        "rounds": 3,
        "quorum": 2,
        "round_timeout_s": 60,
    } | overrides


def client(personas: Personas, who: str) -> APIClient:
    api = personas.client_for(getattr(personas, who))
    api.raise_request_exception = False
    return api


def test_a_hospital_admin_creates_a_draft_job_over_the_hospitals_it_names(personas: Personas) -> None:
    response = client(personas, "hadmin").post("/api/training/jobs", body(), format="json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["id"].startswith("0x") and len(job["id"]) == 66
    assert job["status"] == "draft"
    assert job["model"] == {"name": "mlp", "hidden": [8]}
    assert job["plan_hash"] == TrainingJob.objects.get(job_id=job["id"]).plan_hash
    assert {p["hospital"]["slug"]: p["approval"] for p in job["participants"]} == {
        "general-hospital": "pending",
        "city-clinic": "pending",
    }
    assert job["training_rounds"] == [] and job["model_versions"] == []


@pytest.mark.parametrize("who", ["bob", "alice", "cadmin", "other_hadmin"])
def test_only_an_admin_of_a_named_hospital_creates_a_job(personas: Personas, who: str) -> None:
    # other_hadmin runs City Clinic, which this job does not name.
    response = client(personas, who).post(
        "/api/training/jobs", body(hospitals=["general-hospital"], quorum=1)
    )
    assert_error(response, 403)
    assert not TrainingJob.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"hospitals": ["general-hospital", "nowhere"]}, "hospitals[1]", "unknown_hospital"),
        ({"hospitals": []}, "hospitals", None),
        ({"quorum": 3}, "quorum", "invalid_plan"),
        ({"model": {"name": "resnet"}}, "model.name", "invalid_plan"),
        ({"lr": -1}, "lr", None),
        ({"rounds": 10**12}, "rounds", None),
        ({"name": "x" * 201}, "name", None),
        ({"schedule": "tomorrow"}, "schedule", None),
        ({"strategy": {"name": "trimmed_mean", "trim": 7}}, None, None),
    ],
)
def test_a_bad_job_body_is_a_400_naming_the_field(
    personas: Personas, overrides: dict[str, Any], field: str | None, code: str | None
) -> None:
    response = client(personas, "hadmin").post("/api/training/jobs", body(**overrides), format="json")
    error = assert_error(response, 400, code)
    if field is not None:
        assert error["field"] == field
    assert not TrainingJob.objects.exists()


def test_a_huge_body_is_a_413_in_the_error_shape(personas: Personas, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = client(personas, "hadmin").post("/api/training/jobs", body(name="x" * 20_000), format="json")
    assert_error(response, 413, "too_large")


def test_each_participating_admin_sees_the_job_and_no_one_else_does(personas: Personas) -> None:
    both = make_job(personas)
    general_only = make_job(personas, hospitals=[personas.general], quorum=1, name="general only")
    for who, visible in {
        "hadmin": {both.job_id, general_only.job_id},
        "other_hadmin": {both.job_id},
        "bob": set(),
        "carol": set(),
        "alice": set(),
        "cadmin": set(),
    }.items():
        api = client(personas, who)
        listed = api.get("/api/training/jobs")
        assert listed.status_code == 200
        assert {job["id"] for job in listed.json()["results"]} == visible, who
        assert listed.json()["count"] == len(visible)
        for job in (both, general_only):
            for ref in (job.job_id, job.job_id.upper().replace("0X", "0x"), str(job.pk)):
                response = api.get(f"/api/training/jobs/{ref}")
                if job.job_id in visible:
                    assert response.status_code == 200, (who, ref)
                    assert response.json()["id"] == job.job_id
                else:
                    assert_error(response, 404, "unknown_job")


@pytest.mark.parametrize(
    "ref", ["nope", "0x" + "ab" * 31, "0x" + "zz" * 32, "9" * 30, "-1", "0x" + secrets.token_hex(32)]
)
def test_bad_or_unknown_job_ids_are_404(personas: Personas, ref: str) -> None:
    make_job(personas)
    api = client(personas, "hadmin")
    for path in ("", "/approve", "/start", "/cancel", "/retrain"):
        method = api.get if not path else api.post
        assert_error(method(f"/api/training/jobs/{ref}{path}", {}, format="json"), 404)


def test_the_detail_shows_rounds_metrics_sample_counts_timings_stragglers_and_updates(
    world: WdbcWorld,
) -> None:
    personas = world.personas
    trained = trained_job(world)
    response = client(personas, "hadmin").get(f"/api/training/jobs/{trained.ref}")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "done" and job["current_round"] == 2
    rounds = {r["number"]: r for r in job["training_rounds"]}
    assert sorted(rounds) == [0, 1, 2]
    assert rounds[0]["kind"] == "moments" and rounds[1]["kind"] == "train"
    assert rounds[1]["sample_count"] == 3 + 1
    assert rounds[1]["hospitals"] == {"dispatched": 2, "accepted": 2}
    assert rounds[2]["sample_count"] == 2
    assert rounds[2]["stragglers"] == ["city-clinic"]
    assert rounds[2]["hospitals"] == {"dispatched": 2, "accepted": 1}
    assert rounds[1]["metrics"]["test"]["f1"] == pytest.approx(0.91)
    assert rounds[1]["timings"]["aggregation_s"] == pytest.approx(0.02)
    general = next(u for u in rounds[1]["updates"] if u["hospital"] == "general-hospital")
    row = trained.updates[(1, "general-hospital")]
    assert general["update_id"] == row.update_id and general["patient_root"] == row.patient_root
    assert general["chain"] == {"status": "", "block": None, "tx": ""}
    assert [v["round"] for v in job["model_versions"]] == [0, 1, 2]


def test_a_failed_job_says_why(world: WdbcWorld) -> None:
    trained = trained_job(world)
    reason = "round 2: 0 of quorum 1 updates by the timeout"
    TrainingJob.objects.filter(pk=trained.job.pk).update(status="failed", failure_reason=reason)
    RoundUpdate.objects.filter(round=trained.rounds[2]).update(status=RoundUpdate.Status.STRAGGLER)
    job = client(world.personas, "other_hadmin").get(f"/api/training/jobs/{trained.job.pk}").json()
    assert job["status"] == "failed" and job["failure_reason"] == reason


def test_patching_the_plan_changes_its_hash_and_asks_for_approval_again(personas: Personas) -> None:
    job = make_job(personas)
    JobHospital.objects.filter(job=job).update(approval="approved", approval_plan_hash=job.plan_hash)
    TrainingJob.objects.filter(pk=job.pk).update(status="ready")
    api = client(personas, "other_hadmin")
    response = api.patch(f"/api/training/jobs/{job.job_id}", {"lr": 0.01, "rounds": 4}, format="json")
    assert response.status_code == 200, response.content
    patched = response.json()
    assert patched["lr"] == 0.01 and patched["rounds"] == 4
    assert patched["plan_hash"] != job.plan_hash
    assert patched["status"] == "draft"
    assert {p["approval"] for p in patched["participants"]} == {"pending"}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({}, None, "empty_change"),
        ({"name": "renamed"}, "name", None),
        ({"quorum": 5}, "quorum", "invalid_plan"),
        ({"batch_size": "many"}, "batch_size", None),
        ({"dp": {"noise_multiplier": -1}}, None, "invalid_plan"),
    ],
)
def test_a_bad_plan_patch_is_a_400(
    personas: Personas, change: dict[str, Any], field: str | None, code: str | None
) -> None:
    job = make_job(personas)
    response = client(personas, "hadmin").patch(f"/api/training/jobs/{job.job_id}", change, format="json")
    error = assert_error(response, 400, code)
    if field is not None:
        assert error["field"] == field
    job.refresh_from_db()
    assert job.lr == 0.1 and job.quorum == 1


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_cannot_patch_approve_start_cancel_or_retrain(personas: Personas, who: str) -> None:
    job = make_job(personas, hospitals=[personas.general])
    api = client(personas, who)
    base = f"/api/training/jobs/{job.job_id}"
    assert_error(api.patch(base, {"lr": 0.5}, format="json"), 404, "unknown_job")
    for action, data in (("approve", {"password": PASSWORD}), ("start", {}), ("cancel", {}), ("retrain", {})):
        assert_error(api.post(f"{base}/{action}", data, format="json"), 404, "unknown_job")
    job.refresh_from_db()
    assert job.status == "draft" and job.lr == 0.1
    assert TrainingJob.objects.count() == 1
    assert not JobHospital.objects.exclude(approval="pending").exists()


def test_approving_queues_the_signature_and_the_chain_makes_it_count(personas: Personas) -> None:
    job = make_job(personas)
    api = client(personas, "hadmin")
    assert_error(api.post(f"/api/training/jobs/{job.job_id}/approve", {"password": "wrong"}), 403)
    assert_error(
        api.post(f"/api/training/jobs/{job.job_id}/approve", {}, format="json"), 400, field="password"
    )
    response = api.post(f"/api/training/jobs/{job.job_id}/approve", {"password": PASSWORD}, format="json")
    assert response.status_code == 202, response.content
    approvals = {p["hospital"]["slug"]: p["approval"] for p in response.json()["participants"]}
    assert approvals == {"general-hospital": "queued", "city-clinic": "pending"}
    drain_outbox()
    detail = api.get(f"/api/training/jobs/{job.job_id}").json()
    general = next(p for p in detail["participants"] if p["hospital"]["slug"] == "general-hospital")
    assert general["approval"] == "approved" and general["approved_tx"].startswith("0x")
    assert general["approval_plan_hash"] == job.plan_hash
    assert_error(api.post(f"/api/training/jobs/{job.job_id}/approve", {"password": PASSWORD}), 409)


def test_a_job_starts_only_once_every_hospital_approved_and_can_be_cancelled(personas: Personas) -> None:
    job = make_job(personas)
    api = client(personas, "hadmin")
    assert_error(api.post(f"/api/training/jobs/{job.job_id}/start"), 409)
    for admin in ("hadmin", "other_hadmin"):
        client(personas, admin).post(
            f"/api/training/jobs/{job.job_id}/approve", {"password": PASSWORD}, format="json"
        )
    drain_outbox()
    started = api.post(f"/api/training/jobs/{job.job_id}/start")
    assert started.status_code == 202, started.content
    assert started.json()["status"] == "running"
    assert [r["number"] for r in started.json()["training_rounds"]] == [0]
    assert {u["status"] for u in started.json()["training_rounds"][0]["updates"]} == {"dispatched"}
    cancelled = client(personas, "other_hadmin").post(f"/api/training/jobs/{job.job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["failure_reason"] == "cancelled by other-hadmin"
    assert cancelled.json()["training_rounds"][0]["status"] == "failed"
    assert_error(api.post(f"/api/training/jobs/{job.job_id}/cancel"), 409)


def test_retraining_makes_a_new_draft_job_with_the_same_plan_that_needs_approval_again(
    world: WdbcWorld,
) -> None:
    trained = trained_job(world)
    response = client(world.personas, "hadmin").post(f"/api/training/jobs/{trained.ref}/retrain")
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["id"] != trained.ref and new["retrain_of"] == trained.ref
    assert new["status"] == "draft" and new["name"] == "wdbc (retrain)"
    assert new["plan_hash"] == trained.job.plan_hash  # same plan, but the approvals name the new job id
    assert {p["approval"] for p in new["participants"]} == {"pending"}
    assert {p["hospital"]["slug"] for p in new["participants"]} == {"general-hospital", "city-clinic"}
    assert new["training_rounds"] == []


def test_the_job_list_pages_and_refuses_bad_paging(personas: Personas) -> None:
    for index in range(3):
        make_job(personas, name=f"job {index}")
    api = client(personas, "hadmin")
    page = api.get("/api/training/jobs?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert [job["name"] for job in page["results"]] == ["job 2", "job 1"]  # newest first
    assert_error(api.get("/api/training/jobs?limit=abc"), 400, field="limit")
    assert_error(api.get("/api/models?offset=-1"), 400, field="offset")


def test_a_job_can_be_started_for_later_and_a_bad_schedule_is_a_400(personas: Personas) -> None:
    job = make_job(personas)
    for admin in ("hadmin", "other_hadmin"):
        client(personas, admin).post(f"/api/training/jobs/{job.job_id}/approve", {"password": PASSWORD})
    drain_outbox()
    api = client(personas, "hadmin")
    bad = api.post(f"/api/training/jobs/{job.job_id}/start", {"schedule": {"kind": "soon"}}, format="json")
    assert_error(bad, 400, "invalid_schedule", "schedule.kind")
    later = {"kind": "at", "at": "2999-01-01T00:00:00+00:00"}
    response = api.post(f"/api/training/jobs/{job.job_id}/start", {"schedule": later}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "scheduled"
    assert response.json()["schedule"] == later
    assert response.json()["training_rounds"] == []
