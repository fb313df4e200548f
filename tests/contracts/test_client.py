"""contracts.client: the one JSON-RPC door (reads, errors, the dev chain launcher)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from contracts import client
from contracts.node import AnvilNode, free_port
from tests.contracts.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def test_reads_chain_id_head_and_contract_views(world: World) -> None:
    assert client.chain_id() == 31337
    assert client.latest_block() == world.w3.eth.block_number
    assert client.call("Directory", "consortiumAdmin") == world.consortium_admin.address
    assert client.call("Directory", "isActiveGrantee", world.doctors[0].address) is True
    assert client.get_web3() is client.get_web3()  # one connection per URL


def test_read_as_of_an_earlier_block(world: World) -> None:
    before_doctors = world.w3.eth.block_number - len(world.doctors)
    assert (
        client.call("Directory", "isActiveGrantee", world.doctors[0].address, block_identifier=before_doctors)
        is False
    )


def test_closed_port_raises_chain_unavailable_fast(settings: SettingsWrapper) -> None:
    settings.ETH_RPC_URL = f"http://127.0.0.1:{free_port()}"
    client.reset_caches()
    with pytest.raises(client.ChainUnavailable) as caught:
        client.latest_block()
    assert caught.value.status_code == 503


def test_contract_not_deployed_on_this_chain_is_unavailable(
    anvil: AnvilNode, settings: SettingsWrapper
) -> None:
    settings.ETH_RPC_URL = anvil.rpc_url
    client.reset_caches()
    with pytest.raises(client.ContractNotDeployed, match="deploy_contracts"):
        client.contract("ConsentRegistry")


def test_json_rpc_error_is_a_chain_rpc_error(world: World) -> None:
    with pytest.raises(client.ChainRpcError):
        client.rpc("eth_noSuchMethod", [])


def test_running_dev_chain_starts_anvil_with_state_funds_the_relayer_and_stops_it(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.ETH_RPC_URL = ""
    settings.DEV_CHAIN_PORT = free_port()
    settings.DEV_CHAIN_STATE = tmp_path / "chain" / "anvil-state.json"
    settings.RELAYER_PRIVATE_KEY = "0x" + "11" * 32
    client.reset_caches()
    try:
        with client.running_dev_chain() as chain:
            assert (
                chain.started
                and chain.url == client.rpc_url() == f"http://127.0.0.1:{settings.DEV_CHAIN_PORT}"
            )
            assert (
                client.get_web3().eth.get_balance(client.relayer_account().address)
                == client.DEV_RELAYER_BALANCE_WEI
            )
            with client.running_dev_chain() as again:  # already answering: used, not started twice
                assert not again.started and again.url == chain.url
            assert client.answers(chain.url)  # the inner block did not stop the outer one's chain
        assert not client.answers(chain.url)
    finally:
        client.reset_caches()
    assert settings.DEV_CHAIN_STATE.exists()  # anvil dumped its state on stop
