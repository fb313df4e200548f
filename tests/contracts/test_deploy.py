"""deploy_contracts: idempotent per chain id, redeploys (and says why) when the recorded code is gone."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from eth_account import Account
from pytest_django.fixtures import Settings as SettingsWrapper

from contracts import client
from contracts.deploy import DeployError, deploy_contracts
from contracts.models import Deployment
from contracts.node import AnvilNode, start_anvil
from tests.contracts.conftest import World, use_node

pytestmark = pytest.mark.django_db(transaction=True)


def test_second_run_deploys_nothing(world: World) -> None:
    before = dict(Deployment.objects.values_list("name", "address"))
    nonce_before = world.w3.eth.get_transaction_count(world.relayer.address)

    results = deploy_contracts()

    assert [r.deployed for r in results] == [False, False, False, False]
    assert {r.reason for r in results} == {"up to date"}
    assert dict(Deployment.objects.values_list("name", "address")) == before
    assert world.w3.eth.get_transaction_count(world.relayer.address) == nonce_before


def test_deployment_wires_registry_to_directory_and_relayer_as_anchor_writer(world: World) -> None:
    assert world.registry.functions.directory().call() == world.directory.address
    role = world.anchors.functions.ANCHOR_ROLE().call()
    assert world.anchors.functions.hasRole(role, world.relayer.address).call()
    assert world.directory.functions.consortiumAdmin().call() == world.consortium_admin.address
    row = Deployment.objects.get(name="ConsentRegistry")
    assert row.chain_id == client.chain_id() and row.block_number > 0 and row.source_hash


def test_fresh_chain_with_same_id_and_no_code_redeploys(world: World, settings: SettingsWrapper) -> None:
    old = dict(Deployment.objects.values_list("name", "address"))
    fresh = start_anvil()  # same chain id 31337, empty state: the recorded addresses hold no code
    try:
        use_node(settings, fresh.rpc_url)
        results = deploy_contracts(consortium_admin=world.consortium_admin.address)
        assert [r.deployed for r in results] == [True, True, True, True]
        assert all("no code" in r.reason for r in results)
        assert client.rpc("eth_getCode", [Deployment.objects.get(name="Directory").address, "latest"]) != "0x"
        assert Deployment.objects.count() == 4  # updated in place: one row per (chain id, name)
        assert set(Deployment.objects.values_list("name", flat=True)) == set(old)
    finally:
        fresh.stop()


def test_stale_source_hash_redeploys_it_and_its_dependents(world: World) -> None:
    Deployment.objects.filter(name="Directory").update(source_hash="0xstale")

    results = {r.name: r for r in deploy_contracts(consortium_admin=world.consortium_admin.address)}

    assert results["Directory"].deployed and results["Directory"].reason == "source changed"
    assert results["ConsentRegistry"].deployed  # it points at the old Directory
    assert results["TrainingRegistry"].deployed  # so does it
    assert not results["Anchors"].deployed


def test_directory_needs_a_consortium_admin(anvil: AnvilNode, settings: SettingsWrapper) -> None:
    use_node(settings, anvil.rpc_url)
    with pytest.raises(DeployError, match="consortium admin"):
        deploy_contracts()


def test_command_reports_kept_contracts_plainly(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("deploy_contracts")
    out = capsys.readouterr().out
    assert out.count("already deployed at 0x") == 4 and "ConsentRegistry: already deployed" in out


def test_command_says_first_deployment_plainly(
    anvil: AnvilNode, settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    use_node(settings, anvil.rpc_url)
    call_command("deploy_contracts", consortium_admin=Account.create().address)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" at ")[0] for line in lines] == [
        "Directory: deployed",
        "ConsentRegistry: deployed",
        "Anchors: deployed",
        "TrainingRegistry: deployed",
    ]
    assert all(line.endswith("(first deployment on this chain)") for line in lines)
    assert "not deployed" not in "\n".join(lines)
