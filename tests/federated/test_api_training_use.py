"""GET /api/patients/me/training-use: the updates that trained on my records with a Merkle proof of my
inclusion, checked here in Python and with OpenZeppelin's @openzeppelin/merkle-tree in node (an independent
implementation), against the patient root the chain holds for the update; the versions descending from
them; and whether my TRAINING consent still stands, with the consents to revoke."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from access.models import KeyKind, Role, User
from contracts import client as chain_client
from federated.models import UpdatePatient
from federated.patient_set import leaf_of, verify
from tests.conftest import Personas
from tests.factories import new_address
from tests.federated.api_setup import (  # noqa: F401  (fixtures)
    TrainedJob,
    _registry_deployed,
    put_update_on_chain,
    trained_job,
    training_registry,
)
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.healthhash.test_api_errors import assert_error

pytestmark = pytest.mark.django_db

VERIFIER = Path(__file__).resolve().parents[1] / "js" / "verify_merkle_proof.mjs"
PATH = "/api/patients/me/training-use"


def js_verify(
    root: str, address: str, proof: list[str], addresses: list[str] | None = None
) -> dict[str, Any]:
    """OpenZeppelin's StandardMerkleTree.verify (and .of over `addresses`) in node."""
    request = json.dumps({"root": root, "address": address, "proof": proof, "addresses": addresses})
    proc = subprocess.run(
        ["node", str(VERIFIER)], input=request, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(proc.stdout)


def as_patient(user: User) -> APIClient:
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(user)
    return api


def test_my_proof_verifies_in_python_and_in_js_against_the_root_on_chain(world: WdbcWorld) -> None:
    trained = trained_job(world, approved=True)
    event = put_update_on_chain(world, trained, (1, "general-hospital"))
    on_chain_root = "0x" + bytes(event["patientRoot"]).hex()
    message = trained.chain_updates[(1, "general-hospital")]
    registry = chain_client.contract("TrainingRegistry")
    assert registry.functions.storedUpdateHash(message.update_id).call() == message.update_hash

    address = world.address("p1")
    use = as_patient(world.patients["p1"]).get(PATH)
    assert use.status_code == 200, use.content
    body = use.json()
    assert body["patient"] == address
    updates = {(u["round"], u["hospital"]["slug"]): u for u in body["updates"]}
    assert set(updates) == {(1, "general-hospital"), (2, "general-hospital")}
    mine = updates[(1, "general-hospital")]
    assert mine["patient_root"] == on_chain_root
    assert mine["update_id"] == "0x" + message.update_id.hex()
    assert mine["chain"] == {
        "status": "confirmed",
        "block": event["blockNumber"],
        "tx": event["transactionHash"],
    }
    assert mine["root_matches"] is True
    assert mine["leaf"] == "0x" + leaf_of(address).hex()
    assert mine["sample_count"] == 3 and mine["job"]["id"] == trained.ref
    proof = [bytes.fromhex(node[2:]) for node in mine["proof"]]
    assert len(proof) >= 1
    assert verify(root=bytes.fromhex(on_chain_root[2:]), address=address, proof=proof)

    members = list(
        UpdatePatient.objects.filter(update=trained.updates[(1, "general-hospital")]).values_list(
            "patient_address", flat=True
        )
    )
    checked = js_verify(on_chain_root, address, mine["proof"], members)
    assert checked == {"verified": True, "leaf": mine["leaf"], "root_of_addresses": on_chain_root}
    # The same proof does not prove another patient, nor into another root.
    assert js_verify(on_chain_root, world.address("p3"), mine["proof"])["verified"] is False
    other_root = updates[(2, "general-hospital")]["patient_root"]
    assert js_verify(other_root, address, mine["proof"])["verified"] is False
    round2 = updates[(2, "general-hospital")]
    assert js_verify(other_root, address, round2["proof"])["verified"] is True


def test_versions_descending_from_my_updates_and_my_consent_state(world: WdbcWorld) -> None:
    trained = trained_job(world)
    body = as_patient(world.patients["p2"]).get(PATH).json()
    # p2 trained in round 1 only; version 2 descends from version 1, so it learned from p2 too.
    assert [(u["round"], u["hospital"]["slug"]) for u in body["updates"]] == [(1, "general-hospital")]
    update_id = trained.updates[(1, "general-hospital")].update_id
    versions = {v["round"]: v for v in body["versions"]}
    assert sorted(versions) == [1, 2]
    assert versions[1]["learned_from"] == [update_id] and versions[2]["learned_from"] == [update_id]
    assert versions[2]["weights_hash"] == trained.versions[2].weights_hash
    assert versions[2]["chain"] == {"status": "", "block": None, "tx": ""}
    (consent,) = body["consents"]
    assert consent["hospital"]["slug"] == "general-hospital" and consent["active"] is True
    consent_id = str(world.consents["p2"].id)
    assert consent["consent_ids"] == [consent_id]
    assert consent["revoke"] == [f"/api/consents/{consent_id}/revoke"]

    world.revoke("p2")
    (after,) = as_patient(world.patients["p2"]).get(PATH).json()["consents"]
    assert after["active"] is False and after["consent_ids"] == [] and after["revoke"] == []


def test_a_patient_the_clinic_trained_on_sees_only_the_clinic(world: WdbcWorld) -> None:
    trained_job(world)
    body = as_patient(world.patients["p3"]).get(PATH).json()
    assert {u["hospital"]["slug"] for u in body["updates"]} == {"city-clinic"}
    assert [v["round"] for v in body["versions"]] == [1, 2]
    assert [(c["hospital"]["slug"], c["active"]) for c in body["consents"]] == [("city-clinic", True)]


def test_a_patient_no_model_learned_from_sees_nothing(world: WdbcWorld) -> None:
    trained_job(world)
    body = as_patient(world.personas.alice).get(PATH).json()
    assert body == {
        "patient": world.personas.alice.eth_address,
        "updates": [],
        "versions": [],
        "consents": [],
    }


def test_a_wallet_patient_gets_their_training_use_too(world: WdbcWorld) -> None:
    trained = trained_job(world)
    address = new_address()
    wallet = User.objects.create(
        username="wallet-patient", role=Role.PATIENT, eth_address=address, key_kind=KeyKind.WALLET
    )
    UpdatePatient.objects.create(update=trained.updates[(2, "general-hospital")], patient_address=address)
    body = as_patient(wallet).get(PATH).json()
    (update,) = body["updates"]
    # The row was added after the root was signed: the proof is of the rows, and says it does not match.
    assert update["root_matches"] is False
    assert [v["round"] for v in body["versions"]] == [2]
    assert body["consents"][0]["active"] is False


@pytest.mark.parametrize("who", ["bob", "carol", "hadmin", "other_hadmin", "cadmin"])
def test_only_patients_have_a_training_use(personas: Personas, who: str) -> None:
    api = personas.client_for(getattr(personas, who))
    assert_error(api.get(PATH), 403, "not_a_patient")


def test_signed_out_is_401(api: APIClient) -> None:
    assert_error(api.get(PATH), 401)
