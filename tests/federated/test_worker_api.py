"""The hospital workers' endpoints (/api/training/worker/...): signature-only, no session and no CSRF, thin
over federated.rounds. A bad signature is 401 or 403 with a code that says which; a bad body is a 400
naming the field; an oversized body is a 413 before it is read."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient
from web3.contract import Contract

from federated import worker_auth
from federated.models import RoundUpdate, TrainingJob, UpdateRejection
from federated.release_format import open_records
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.federated.worker_setup import Federation, registry_fixture, training_registry_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

RELEASE = "/api/training/worker/release"


@pytest.fixture(name="fed")
def fed_fixture(world: WdbcWorld, registry: Contract, tmp_path: Path) -> Federation:
    return Federation(world=world, registry=registry, api_url="", tmp_path=tmp_path)


@pytest.fixture(name="job")
def job_fixture(fed: Federation) -> TrainingJob:
    return fed.start(fed.job())


@pytest.fixture(name="api")
def api_fixture() -> APIClient:
    return APIClient(enforce_csrf_checks=True)  # no session, no CSRF token: the signature is all


def _signed_body(
    fed: Federation, job: TrainingJob, *, key: bytes | None = None, **auth: Any
) -> dict[str, Any]:
    hospital_id = fed.personas.general.hospital_id
    body = {"job_id": job.job_id, "round": 0, "hospital_id": hospital_id}
    signature = worker_auth.sign_request(
        key or bytes(fed.personas.chain.accounts.hospital_account.key),
        action="release",
        job_id=job.job_id,
        round_number=0,
        hospital_id=hospital_id,
        body=body,
    )
    return body | {"auth": signature | auth}


def test_the_config_names_the_chain_the_registry_and_the_hospital(fed: Federation, api: APIClient) -> None:
    answer = api.get("/api/training/worker/config", {"hospital": "general-hospital"})
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {
        "chain_id": fed.personas.chain.chain_id,
        "training_registry": fed.registry.address,
        "cid_version": 0,
        "hospital": {
            "slug": "general-hospital",
            "hospital_id": fed.personas.general.hospital_id,
            "account_address": fed.personas.general.account_address,
            "active": True,
        },
    }
    missing = api.get("/api/training/worker/config", {"hospital": "nowhere"})
    assert missing.status_code == 404 and missing.json()["error"] == "hospital_not_found"


def test_a_signed_release_request_gets_the_release_sealed_to_the_hospital(
    fed: Federation, job: TrainingJob, api: APIClient
) -> None:
    answer = api.post(RELEASE, _signed_body(fed, job), format="json")

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    pinned_block = job.training_rounds.get(number=0).pinned_block
    assert (body["record_count"], body["patient_count"], body["pinned_block"]) == (92, 3, pinned_block)
    records = open_records(
        base64.b64decode(body["sealed"]),
        private_key=bytes(fed.personas.chain.accounts.hospital_account.key),
        job_key=job.job_id,
        hospital_account=fed.personas.general.account_address,
        pinned_block=pinned_block,
    )
    assert len(records) == 92


def test_an_expired_or_garbled_signature_is_a_401(fed: Federation, job: TrainingJob, api: APIClient) -> None:
    expired = api.post(RELEASE, _signed_body(fed, job, expires=int(time.time()) - 1), format="json")
    garbled = api.post(RELEASE, _signed_body(fed, job, signature="0x" + "00" * 65), format="json")

    for answer in (expired, garbled):
        assert answer.status_code == 401
        assert answer.json()["error"] == "bad_worker_signature" and answer.json()["field"] == "auth"


def test_a_request_signed_by_another_key_or_changed_after_signing_is_a_403(
    fed: Federation, job: TrainingJob, api: APIClient
) -> None:
    other_key = bytes(fed.personas.chain.accounts.other_hospital_account.key)
    foreign = api.post(RELEASE, _signed_body(fed, job, key=other_key), format="json")
    changed = _signed_body(fed, job)
    changed["note"] = "added"  # not in the body signed: the signature now recovers someone else
    altered = api.post(RELEASE, changed, format="json")

    for answer in (foreign, altered):
        assert answer.status_code == 403 and answer.json()["error"] == "bad_signature"
    assert UpdateRejection.objects.filter(reason_code="bad_signature").count() == 2
    assert RoundUpdate.objects.get(round__job=job, hospital=fed.personas.general).status == "dispatched"


@pytest.mark.parametrize(
    ("path", "drop", "field"),
    [
        (RELEASE, "hospital_id", "hospital_id"),
        ("/api/training/worker/moments", "moments", "moments"),
        ("/api/training/worker/refusals", "reason", "reason"),
    ],
)
def test_a_missing_member_is_a_400_naming_it(
    fed: Federation, job: TrainingJob, api: APIClient, path: str, drop: str, field: str
) -> None:
    body = _signed_body(fed, job) | {"moments": {}, "reason": "plan_mismatch", "detail": ""}
    del body[drop]
    answer = api.post(path, body, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == field


def test_an_update_without_its_signature_is_a_400_naming_it(api: APIClient, fed: Federation) -> None:
    answer = api.post(
        "/api/training/worker/updates",
        {"update": {}, "cid": "Qm", "patients": ["0x" + "11" * 20], "metrics": {}},
        format="json",
    )
    assert answer.status_code == 400 and answer.json()["field"] == "signature"


def test_an_oversized_body_is_refused_before_it_is_read(
    fed: Federation, job: TrainingJob, api: APIClient
) -> None:
    body = _signed_body(fed, job) | {"padding": "x" * 70_000}
    answer = api.post(RELEASE, body, format="json")
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
