"""A node that is not the chain the contracts were deployed on (a reset dev chain: same port, same chain
id, head 0) is refused for every write, said plainly, and never taken for a re-org; deployment checks
the code it keeps by its hash. Each test runs its own anvil, which it resets or reverts."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from eth_account import Account
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from contracts import chain_identity, client, indexer, outbox, relayer
from contracts.deploy import deploy_contracts
from contracts.health import check_chain
from contracts.messages import Domain, Grant
from contracts.models import ChainEvent, ChainTx, Deployment, OutboxItem
from contracts.node import AnvilNode, start_anvil
from contracts.relayer_kinds import ConsentGrantItem
from tests.conftest import PASSWORD, Personas
from tests.contracts.conftest import World, build_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_node() -> Iterator[AnvilNode]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


def node_rpc(node: AnvilNode, method: str, params: list[Any] | None = None) -> Any:
    import requests

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    return requests.post(node.rpc_url, json=body, timeout=10).json()["result"]


def grant_item(world: World) -> ConsentGrantItem:
    patient = Account.from_key("0x" + secrets.token_hex(32))
    grant = Grant(
        patient=patient.address,
        grantee=world.doctors[0].address,
        scope="chart",
        purpose=0,
        expires_at=0,
        version=0,
        deadline=int(time.time()) + 3600,
    )
    payload = grant.typed_data(Domain(31337, world.registry.address))
    return ConsentGrantItem(grant, patient.sign_typed_data(full_message=payload).signature)


def test_reset_chain_refuses_every_write_and_says_so(
    own_node: AnvilNode, settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build_world(own_node, settings)
    with transaction.atomic():
        outbox.enqueue(grant_item(world))
    relayer.relay_once()
    indexer.sync_chain()
    node_rpc(own_node, "evm_setAutomine", [False])
    with transaction.atomic():
        in_flight = outbox.enqueue(grant_item(world))
    assert relayer.relay_once(receipt_timeout_s=0.1).waiting_txs == 1  # signed and sent, not mined
    with transaction.atomic():
        waiting = outbox.enqueue(grant_item(world))
    events_before = ChainEvent.objects.count()
    assert events_before > 0

    node_rpc(own_node, "anvil_reset")  # the dev chain's state is lost: same port and chain id, head 0
    node_rpc(own_node, "evm_setAutomine", [True])
    chain_identity.forget()  # as CHECK_TTL_S later

    with pytest.raises(chain_identity.WrongChain) as refused, transaction.atomic():
        outbox.enqueue(grant_item(world))
    assert refused.value.code == "wrong_chain" and refused.value.status_code == 503
    assert "not the chain the contracts were deployed on" in refused.value.detail
    report = relayer.relay_once()
    assert "not the chain" in report.wrong_chain and report.txs_sent == report.rebroadcast == 0
    assert int(node_rpc(own_node, "eth_getTransactionCount", [world.relayer.address, "latest"]), 16) == 0
    with pytest.raises(chain_identity.WrongChain):
        indexer.sync_chain()
    # Not taken for a re-org from block 0: nothing indexed is dropped, nothing mined is put back in flight.
    assert ChainEvent.objects.count() == events_before
    assert sorted(ChainTx.objects.values_list("status", flat=True)) == ["confirmed", "signed"]
    waiting.refresh_from_db()
    assert waiting.status == OutboxItem.Status.PENDING
    health = check_chain(2.0)
    assert health.status == "down" and "not the chain the contracts were deployed on" in health.detail
    for command in ("sync_chain", "relay"):
        with pytest.raises(CommandError, match="not the chain the contracts were deployed on"):
            call_command(command)

    # The operator's way out when the old chain is gone for good: deploy again, which records the new one.
    client.fund_relayer()
    results = deploy_contracts(consortium_admin=world.consortium_admin.address)
    assert all(result.deployed for result in results)
    chain_identity.require_deployed_chain()
    assert check_chain(2.0).status == "ok"
    # The old chain's state is not taken for the new one's: no re-org from block 0, nothing old re-sent.
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error_code) == ("failed", "chain_replaced")
    assert indexer.sync_chain().reorg_fork is None and ChainEvent.objects.count() >= events_before
    assert relayer.relay_once().rebroadcast == 0
    assert ChainTx.objects.earliest("id").status == "confirmed"  # the old chain's, kept as it was


def test_chain_reverted_below_the_deployment_block_is_not_the_deployments_chain(
    own_node: AnvilNode, settings: SettingsWrapper
) -> None:
    snapshot = node_rpc(own_node, "evm_snapshot")
    build_world(own_node, settings)
    chain_identity.require_deployed_chain()
    deployed_in = Deployment.objects.get(name="Directory").block_number

    node_rpc(own_node, "evm_revert", [snapshot])  # same genesis, but the deployment's blocks are gone
    chain_identity.forget()
    with pytest.raises(chain_identity.WrongChain, match=f"no block {deployed_in}"):
        chain_identity.require_deployed_chain()

    node_rpc(own_node, "anvil_mine", [hex(deployed_in + 5)])  # the height again, other blocks
    chain_identity.forget()
    with pytest.raises(chain_identity.WrongChain, match=f"its block {deployed_in} is"):
        chain_identity.require_deployed_chain()


def test_grant_on_another_chain_is_answered_503_wrong_chain(personas: Personas) -> None:
    Deployment.objects.update(genesis_hash="0x" + "ee" * 32)  # recorded on a chain this node is not
    client.reset_caches()
    body = {"grantee": personas.bob.eth_address, "scope": "chart", "purpose": "TREATMENT"}
    api: APIClient = personas.client_for(personas.alice)

    response = api.post("/api/consents", {**body, "password": PASSWORD}, format="json")

    assert response.status_code == 503, response.json()
    assert response.json()["error"] == "wrong_chain"
    assert not OutboxItem.objects.exists()


def test_deploy_redeploys_a_contract_whose_address_holds_another_contracts_code(world: World) -> None:
    anchors = Deployment.objects.get(name="Anchors").address
    Deployment.objects.filter(name="ConsentRegistry").update(address=anchors)  # code, but not its code

    results = {r.name: r for r in deploy_contracts(consortium_admin=world.consortium_admin.address)}

    assert results["ConsentRegistry"].deployed
    assert "not this contract's" in results["ConsentRegistry"].reason
    rows = dict(Deployment.objects.values_list("name", "address"))
    assert len(set(rows.values())) == len(rows)  # never two contracts recorded at one address


def test_deploy_checks_rows_without_a_code_hash_against_the_artifact(world: World) -> None:
    # Rows recorded before code hashes were: the artifact's runtime code, immutables masked, decides.
    Deployment.objects.update(code_hash="", genesis_hash="", block_hash="")
    kept = deploy_contracts(consortium_admin=world.consortium_admin.address)
    assert [r.deployed for r in kept] == [False] * 4  # immutables (EIP712, directory) are no mismatch
    assert not Deployment.objects.filter(code_hash="").exists()  # and the identity is filled in
    assert not Deployment.objects.filter(genesis_hash="").exists()

    anchors = Deployment.objects.get(name="Anchors").address
    Deployment.objects.filter(name="Directory").update(address=anchors, code_hash="")
    results = {r.name: r for r in deploy_contracts(consortium_admin=world.consortium_admin.address)}
    assert results["Directory"].deployed and "not this contract's" in results["Directory"].reason
