"""POST /api/models/{job}/predict: a doctor of a participating hospital, with TREATMENT consent, gets the
answer of the job's latest published version; every record behind it is opened through the one door (and
logged), and the prediction itself is one more entry in the patient's access log."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient
from sklearn.datasets import load_breast_cancer

from access.consent import services as consent_services
from access.models import AccessLogEntry, Consent, Role, User
from contracts.drain import drain_outbox
from demo.charts import chart_bundle_for_row
from ehr import records
from federated.features import FEATURE_NAMES
from federated.models import ModelVersion
from tests.conftest import PASSWORD, _user_with_key
from tests.factories import new_address
from tests.federated.api_setup import (  # noqa: F401  (fixtures)
    TrainedJob,
    _registry_deployed,
    make_job,
    trained_job,
    training_registry,
)
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.healthhash.test_api_errors import assert_error

pytestmark = pytest.mark.django_db


def api_for(user: User) -> APIClient:
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(user)
    return api


def treatment(patient: User, doctor: User) -> Consent:
    consent = consent_services.grant_with_managed_key(
        patient=patient,
        password=PASSWORD,
        grantee=str(doctor.eth_address),
        scope="chart",
        purpose="TREATMENT",
        expires_at=None,
    )
    drain_outbox()
    consent.refresh_from_db()
    assert consent.status == "active"
    return consent


def log_of(patient: User, **filters: Any) -> list[AccessLogEntry]:
    return list(AccessLogEntry.objects.filter(patient_address=patient.eth_address, **filters).order_by("seq"))


def predict(api: APIClient, trained: TrainedJob | str, patient: Any) -> Any:
    ref = trained if isinstance(trained, str) else trained.ref
    return api.post(f"/api/models/{ref}/predict", {"patient": patient}, format="json")


def test_a_consented_doctor_gets_the_latest_versions_answer_and_the_patient_sees_it_logged(
    world: WdbcWorld,
) -> None:
    personas = world.personas
    trained = trained_job(world)
    p0, p1 = world.patients["p0"], world.patients["p1"]
    consent = treatment(p0, personas.bob)
    treatment(p1, personas.bob)
    before = len(log_of(p0))

    response = predict(api_for(personas.bob), trained, world.address("p0").lower())
    assert response.status_code == 200, response.content
    answer = response.json()
    # Table row 0 is malignant, row 19 benign (release_setup.ROWS).
    assert answer["label"] == "malignant" and answer["probability"] > 0.9
    assert answer["job"] == {"id": trained.ref, "number": trained.job.pk, "name": "wdbc"}
    assert answer["round"] == 2  # nothing is published on chain yet: the latest version answers
    assert answer["cid"] == trained.versions[2].cid
    assert answer["weights_hash"] == trained.versions[2].weights_hash
    assert answer["chain"] == {"status": "", "block": None, "tx": ""}
    assert answer["records_used"] == 30

    entries = log_of(p0)[before:]
    opens = [e for e in entries if e.action == "open"]
    assert len(opens) == 30 and {e.actor_id for e in opens} == {personas.bob.pk}
    (entry,) = [e for e in entries if e.action == "predict"]
    assert entry is entries[-1] and len(entries) == 31
    assert entry.actor_id == personas.bob.pk and entry.outcome == "allowed"
    assert entry.purpose == "TREATMENT"
    assert entry.legal_basis == f"consent:{consent.id}@{consent.granted_block}"
    assert entry.detail == {
        "job": trained.ref,
        "round": 2,
        "weights_hash": trained.versions[2].weights_hash,
        "records": 30,
    }
    # The patient reads it in their own access log.
    mine = api_for(p0).get("/api/patients/me/access-log").json()
    listed = mine["results"] if isinstance(mine, dict) else mine
    assert any(item["action"] == "predict" for item in listed)

    benign = predict(api_for(personas.bob), trained, world.address("p1")).json()
    assert benign["label"] == "benign" and benign["probability"] < 0.1


def test_the_latest_version_published_on_chain_answers_before_a_newer_unpublished_one(
    world: WdbcWorld,
) -> None:
    trained = trained_job(world)
    treatment(world.patients["p0"], world.personas.bob)
    ModelVersion.objects.filter(pk=trained.versions[1].pk).update(
        chain_status="confirmed", chain_block=123, chain_tx="0x" + "ab" * 32
    )
    answer = predict(api_for(world.personas.bob), trained, world.address("p0")).json()
    assert answer["round"] == 1
    assert answer["chain"] == {"status": "confirmed", "block": 123, "tx": "0x" + "ab" * 32}


def test_a_doctor_without_consent_learns_nothing_and_the_denial_is_logged(world: WdbcWorld) -> None:
    personas = world.personas
    trained = trained_job(world)
    p2 = world.patients["p2"]
    for doctor in (personas.bob, personas.carol):  # carol works at City Clinic, also in the job
        assert_error(predict(api_for(doctor), trained, world.address("p2")), 404, "unknown_patient")
    denials = log_of(p2, action="deny")
    assert {e.actor_id for e in denials} == {personas.bob.pk, personas.carol.pk}
    assert not log_of(p2, action__in=["open", "predict"])


def test_a_revoked_treatment_consent_is_a_403_with_the_doors_reason(world: WdbcWorld) -> None:
    personas = world.personas
    trained = trained_job(world)
    p1 = world.patients["p1"]
    consent = treatment(p1, personas.bob)
    consent_services.revoke_with_managed_key(patient=p1, consent=consent, password=PASSWORD)
    drain_outbox()
    assert_error(predict(api_for(personas.bob), trained, world.address("p1")), 403, "revoked")
    assert log_of(p1, action="deny", actor=personas.bob)
    assert not log_of(p1, action="predict")


def test_missing_features_are_a_400_naming_them(world: WdbcWorld) -> None:
    personas = world.personas
    trained = trained_job(world)
    patient = _user_with_key("p-partial", Role.PATIENT)
    table = load_breast_cancer()
    bundle = chart_bundle_for_row(
        table.data[5],
        "malignant",
        [str(n) for n in table.feature_names],
        personas.general,
        patient_address=str(patient.eth_address),
    )
    dropped = {"worst area", "mean texture"}
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["code"]["text"] not in dropped]
    records.import_bundle(actor=patient, patient=patient, bundle=bundle)
    treatment(patient, personas.bob)
    error = assert_error(
        predict(api_for(personas.bob), trained, patient.eth_address), 400, "missing_features"
    )
    assert error["field"] == "patient"
    assert "mean texture" in error["detail"] and "worst area" in error["detail"]
    assert sum(name in error["detail"] for name in FEATURE_NAMES) == 2
    assert not log_of(patient, action="predict")


@pytest.mark.parametrize("who", ["hadmin", "other_hadmin", "cadmin", "alice"])
def test_no_one_but_a_doctor_of_the_jobs_hospitals_predicts(world: WdbcWorld, who: str) -> None:
    trained = trained_job(world)
    treatment(world.patients["p0"], world.personas.bob)
    user = world.patients["p0"] if who == "alice" else getattr(world.personas, who)
    assert_error(predict(api_for(user), trained, world.address("p0")), 404, "unknown_job")
    assert not log_of(world.patients["p0"], action="predict")


def test_a_doctor_of_a_hospital_outside_the_job_does_not_see_it(world: WdbcWorld) -> None:
    personas = world.personas
    trained = trained_job(world, job=make_job(personas, hospitals=[personas.general]))
    treatment(world.patients["p0"], personas.carol)
    assert_error(predict(api_for(personas.carol), trained, world.address("p0")), 404, "unknown_job")
    assert predict(api_for(personas.bob2), trained, world.address("p0")).status_code == 404


def test_a_job_without_versions_has_nothing_to_answer(world: WdbcWorld) -> None:
    job = make_job(world.personas)
    treatment(world.patients["p0"], world.personas.bob)
    response = predict(api_for(world.personas.bob), job.job_id, world.address("p0"))
    assert_error(response, 404, "no_model_version")


@pytest.mark.parametrize(
    ("data", "status", "code", "field"),
    [
        ({"patient": "nope"}, 400, "bad_address", "patient"),
        ({"patient": "0x" + "G" * 40}, 400, "bad_address", "patient"),
        ({}, 400, "required", "patient"),
        ({"patient": ["0x" + "1" * 40]}, 400, None, "patient"),
        ({"patient": new_address()}, 404, "unknown_patient", "patient"),
    ],
)
def test_hostile_prediction_input_is_refused_in_the_error_shape(
    world: WdbcWorld, data: dict[str, Any], status: int, code: str | None, field: str
) -> None:
    trained = trained_job(world)
    response = api_for(world.personas.bob).post(f"/api/models/{trained.ref}/predict", data, format="json")
    assert_error(response, status, code, field)


def test_a_huge_prediction_body_is_a_413(world: WdbcWorld, settings: Any) -> None:
    trained = trained_job(world)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api_for(world.personas.bob).post(
        f"/api/models/{trained.ref}/predict", {"patient": "0x" + "1" * 40, "pad": "x" * 20_000}, format="json"
    )
    assert_error(response, 413, "too_large")
