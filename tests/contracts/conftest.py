"""Fixtures for the chain I/O tests: the session anvil, contracts deployed by OUR deploy.py per test, a
fresh relayer key per test, and an indexer with only the handlers the test registers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pytest_django.fixtures import Settings as SettingsWrapper
from web3 import Web3
from web3.contract import Contract

from contracts import client, indexer
from contracts.deploy import deploy_contracts
from contracts.node import AnvilNode, anvil_private_keys
from contracts.typed_data import hospital_id
from tests.fixtures.chain import transact

ZERO = "0x" + "00" * 20


@dataclass
class World:
    """Contracts deployed through contracts.deploy on the session anvil, with one registered hospital."""

    w3: Web3
    node: AnvilNode
    relayer: LocalAccount
    consortium_admin: LocalAccount
    hospital_admin: LocalAccount
    doctors: list[LocalAccount]
    hospital_id: bytes
    directory: Contract
    registry: Contract
    anchors: Contract
    base_nonce: int  # the relayer's nonce after deployment

    def relayer_txs(self) -> int:
        """Transactions the relayer key sent since the world was set up."""
        return self.w3.eth.get_transaction_count(self.relayer.address) - self.base_nonce

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def isolated_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain layer is tested alone: the apps' registered handlers are set aside for the test."""
    monkeypatch.setattr(indexer, "_handlers", {})
    monkeypatch.setattr(indexer, "_rewinds", [])


def use_node(settings: SettingsWrapper, rpc_url: str) -> LocalAccount:
    """Point the app at `rpc_url` with a fresh, funded relayer key (its nonces are this test's alone)."""
    settings.ETH_RPC_URL = rpc_url
    settings.CHAIN_CONFIRMATIONS = 0
    settings.RELAYER_PRIVATE_KEY = "0x" + secrets.token_hex(32)
    client.reset_caches()
    client.fund_relayer()
    return client.relayer_account()


def build_world(node: AnvilNode, settings: SettingsWrapper) -> World:
    relayer = use_node(settings, node.rpc_url)
    keys = [Account.from_key(k) for k in anvil_private_keys(6)]
    consortium_admin, hospital_admin, hospital_account, doctors = keys[1], keys[2], keys[3], keys[4:6]
    deploy_contracts(consortium_admin=consortium_admin.address)
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    directory, registry, anchors = (
        w3.eth.contract(address=client.contract(n).address, abi=client.contract(n).abi)
        for n in ("Directory", "ConsentRegistry", "Anchors")
    )
    hid = hospital_id("general-hospital")
    transact(
        directory.functions.execute((0, hid, hospital_account.address, hospital_admin.address, 0, 0)),
        consortium_admin.address,
    )
    for doctor in doctors:
        transact(directory.functions.execute((2, hid, doctor.address, ZERO, 0, 0)), hospital_admin.address)
    return World(
        w3=w3,
        node=node,
        relayer=relayer,
        consortium_admin=consortium_admin,
        hospital_admin=hospital_admin,
        doctors=list(doctors),
        hospital_id=hid,
        directory=directory,
        registry=registry,
        anchors=anchors,
        base_nonce=w3.eth.get_transaction_count(relayer.address),
    )


@pytest.fixture
def world(anvil: AnvilNode, settings: SettingsWrapper) -> Iterator[World]:
    yield build_world(anvil, settings)
    client.reset_caches()
