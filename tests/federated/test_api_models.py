"""The model API (/api/models...): versions with provenance (hospitals, rounds, patient roots, update ids and
chain references), flagged patients after a TRAINING revocation mined on the real chain, and the weights,
for the admins of the participating hospitals only."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from contracts import client as chain_client
from contracts import outbox
from contracts.drain import drain_outbox
from contracts.messages import ModelVersion as ChainModelVersion
from contracts.relayer_kinds import TrainingModelVersionItem
from ehr.storage.unixfs import parse_cid
from federated import weights_format
from federated.models import ModelVersion
from tests.conftest import Personas
from tests.federated.api_setup import (  # noqa: F401  (fixtures)
    TrainedJob,
    _registry_deployed,
    make_job,
    put_update_on_chain,
    trained_job,
    training_registry,
)
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.healthhash.test_api_errors import assert_error

pytestmark = pytest.mark.django_db

OUTSIDERS = ["bob", "bob2", "carol", "alice", "cadmin"]


def api_for(personas: Personas, who: str) -> APIClient:
    api = personas.client_for(getattr(personas, who))
    api.raise_request_exception = False
    return api


def version_paths(trained: TrainedJob) -> list[str]:
    base = f"/api/models/{trained.ref}"
    return [base, f"{base}/versions/1", f"{base}/versions/1/weights"]


def test_the_model_list_names_jobs_with_versions_to_their_admins_and_doctors_only(world: WdbcWorld) -> None:
    """Doctors of the participating hospitals see the list too: it is what they pick a model to predict
    with from. The versions' provenance (GET models/{job}) stays with the admins."""
    personas = world.personas
    trained = trained_job(world)
    make_job(personas, name="no versions yet")
    for who in ("hadmin", "other_hadmin", "bob", "bob2", "carol"):
        listed = api_for(personas, who).get("/api/models")
        assert listed.status_code == 200
        (only,) = listed.json()["results"]
        assert only["job"] == {"id": trained.ref, "number": trained.job.pk, "name": "wdbc"}
        assert only["version_count"] == 3 and only["latest_round"] == 2
        assert only["latest"]["round"] == 2 and only["latest"]["cid"] == trained.versions[2].cid
        assert only["latest"]["chain"] == {"status": "", "block": None, "tx": ""}
    for who in ("alice", "cadmin"):
        listed = api_for(personas, who).get("/api/models")
        assert listed.status_code == 200 and listed.json()["results"] == [], who
    for doctor in (personas.bob, personas.carol):
        assert api_for(personas, doctor.username).get(f"/api/models/{trained.ref}").status_code == 404


def test_versions_carry_their_provenance_and_chain_references(world: WdbcWorld) -> None:
    trained = trained_job(world, approved=True)
    event = put_update_on_chain(world, trained, (1, "general-hospital"))
    response = api_for(world.personas, "hadmin").get(f"/api/models/{trained.ref}")
    assert response.status_code == 200, response.content
    versions = {v["round"]: v for v in response.json()["versions"]}
    assert sorted(versions) == [0, 1, 2]
    v0, v1, v2 = versions[0], versions[1], versions[2]
    # Round 0 (moments) names no patients; later versions descend from every earlier averaged update.
    assert v0["provenance"]["rounds"] == [0]
    assert v1["provenance"]["rounds"] == [0, 1]
    assert v2["provenance"]["rounds"] == [0, 1, 2]
    assert [h["slug"] for h in v2["provenance"]["hospitals"]] == ["city-clinic", "general-hospital"]
    # The job's list names each version's own updates; a version's page names its whole lineage.
    assert [(u["round"], u["hospital"]) for u in v1["provenance"]["averages"]] == [
        (1, "city-clinic"),
        (1, "general-hospital"),
    ]
    assert [(u["round"], u["hospital"]) for u in v2["provenance"]["averages"]] == [(2, "general-hospital")]
    assert "updates" not in v2["provenance"]
    detail = api_for(world.personas, "other_hadmin").get(f"/api/models/{trained.job.pk}/versions/2").json()
    lineage = {(u["round"], u["hospital"]): u for u in detail["provenance"]["updates"]}
    assert set(lineage) == {
        (0, "city-clinic"),
        (0, "general-hospital"),
        (1, "city-clinic"),
        (1, "general-hospital"),
        (2, "general-hospital"),  # the Clinic straggled in round 2
    }
    general1 = lineage[(1, "general-hospital")]
    row = trained.updates[(1, "general-hospital")]
    assert general1["update_id"] == row.update_id
    assert general1["patient_root"] == row.patient_root == "0x" + bytes(event["patientRoot"]).hex()
    assert general1["chain"] == {
        "status": "confirmed",
        "block": event["blockNumber"],
        "tx": event["transactionHash"],
    }
    assert general1 == next(u for u in v1["provenance"]["averages"] if u["hospital"] == "general-hospital")
    assert (
        v2["provenance"]["flagged"]
        == detail["provenance"]["flagged"]
        == {
            "count": 0,
            "by_hospital": {"city-clinic": 0, "general-hospital": 0},
        }
    )
    assert v1["weights_url"] == f"/api/models/{trained.ref}/versions/1/weights"
    assert detail["cid"] == trained.versions[2].cid and detail["round"] == 2
    assert {k: v for k, v in detail.items() if k != "provenance"} == {
        k: v for k, v in v2.items() if k != "provenance"
    }


def test_a_published_version_shows_its_transaction_and_block(world: WdbcWorld) -> None:
    trained = trained_job(world)
    version = trained.versions[2]
    chain_version = ChainModelVersion(
        job_id=bytes.fromhex(trained.ref[2:]),
        round=2,
        weights_hash=bytes.fromhex(version.weights_hash[2:]),
        cid_digest=parse_cid(version.cid).digest,
        metrics_hash=bytes.fromhex(version.metrics_hash[2:]),
        updates_root=bytes.fromhex(version.updates_root[2:]),
    )
    item = outbox.enqueue(TrainingModelVersionItem(chain_version))
    drain_outbox()
    item.refresh_from_db()
    assert item.status == "confirmed", item.error_detail
    registry = chain_client.contract("TrainingRegistry")
    (event,) = registry.events.ModelVersionPublished().get_logs(from_block=item.confirmed_block)
    tx = "0x" + event.transactionHash.hex().removeprefix("0x")
    # What the indexer's handler records (federated/chain_handlers.py) for the published version.
    ModelVersion.objects.filter(pk=version.pk).update(
        chain_status="confirmed", chain_block=event.blockNumber, chain_tx=tx
    )
    body = api_for(world.personas, "hadmin").get(f"/api/models/{trained.ref}/versions/2").json()
    assert body["chain"] == {"status": "confirmed", "block": event.blockNumber, "tx": tx}
    assert (
        registry.functions.storedModelVersionHash(chain_version.model_version_id).call()
        == chain_version.model_version_hash
    )


def test_a_training_revocation_mined_on_chain_flags_every_version_that_used_the_patient(
    world: WdbcWorld,
) -> None:
    trained = trained_job(world)
    api = api_for(world.personas, "hadmin")

    def flagged() -> dict[int, dict]:
        versions = api.get(f"/api/models/{trained.ref}").json()["versions"]
        return {v["round"]: v["provenance"]["flagged"] for v in versions}

    assert {r: f["count"] for r, f in flagged().items()} == {0: 0, 1: 0, 2: 0}
    world.revoke("p1")  # mined by drain_outbox, indexed from the chain's event
    world.consents["p1"].refresh_from_db()
    assert world.consents["p1"].status == "revoked" and world.consents["p1"].ended_block is not None
    after = flagged()
    assert after[0]["count"] == 0
    assert after[1] == {"count": 1, "by_hospital": {"city-clinic": 0, "general-hospital": 1}}
    # Version 2 descends from version 1: p1 is in its lineage twice (rounds 1 and 2) and counts once.
    assert after[2] == {"count": 1, "by_hospital": {"city-clinic": 0, "general-hospital": 1}}
    # p2 consented to laboratory records only, and trained in round 1 alone: flagged in both versions.
    world.revoke("p2")
    assert {r: f["count"] for r, f in flagged().items()} == {0: 0, 1: 2, 2: 2}


def test_the_weights_are_the_stored_safetensors_bytes(world: WdbcWorld) -> None:
    trained = trained_job(world)
    for who in ("hadmin", "other_hadmin"):
        response = api_for(world.personas, who).get(
            f"/api/models/{trained.ref}/versions/1/weights", HTTP_ACCEPT="application/octet-stream"
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert response.content == trained.weights
        digest = "0x" + hashlib.sha256(response.content).hexdigest()
        assert digest == trained.versions[1].weights_hash == response["X-Weights-SHA256"]
        assert set(weights_format.load(response.content)) == {
            "standardize.mean",
            "standardize.scale",
            "layers.0.weight",
            "layers.0.bias",
        }


def test_weights_that_do_not_match_their_hash_are_never_served(world: WdbcWorld) -> None:
    trained = trained_job(world)
    ModelVersion.objects.filter(pk=trained.versions[1].pk).update(weights_hash="0x" + "11" * 32)
    response = api_for(world.personas, "hadmin").get(
        f"/api/models/{trained.ref}/versions/1/weights", HTTP_ACCEPT="application/octet-stream"
    )
    assert_error(response, 409, "broken_model")


@pytest.mark.parametrize("who", [*OUTSIDERS, "other_hadmin"])
def test_no_one_but_the_participating_admins_sees_versions_or_weights(world: WdbcWorld, who: str) -> None:
    # A job of General Hospital alone: City Clinic's admin is an outsider too.
    personas = world.personas
    trained = trained_job(world, job=make_job(personas, hospitals=[personas.general]))
    api = api_for(personas, who)
    for path in version_paths(trained):
        assert_error(api.get(path), 404, "unknown_job")


@pytest.mark.parametrize(
    "path",
    [
        "/api/models/0xnothex",
        "/api/models/{ref}/versions/7",
        "/api/models/{ref}/versions/99999999999999999999999",
        "/api/models/{ref}/versions/3/weights",
        "/api/models/{ref}/versions/-1",
        "/api/models/{ref}/versions/one",
    ],
)
def test_bad_versions_are_404_in_the_error_shape(world: WdbcWorld, path: str) -> None:
    trained = trained_job(world)
    assert_error(api_for(world.personas, "hadmin").get(path.format(ref=trained.ref)), 404)
