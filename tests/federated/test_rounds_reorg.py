"""A re-org that drops the blocks carrying a round's updates and its model version: they go back to queued,
and are confirmed again once the relayer has them mined on the new branch. Runs on its own anvil."""

from __future__ import annotations

import pytest
from web3.types import RPCEndpoint

from contracts import indexer
from contracts.drain import drain_outbox
from federated import rounds
from federated.models import ModelVersion, RoundUpdate
from tests.federated.rounds_setup import (  # noqa: F401  (fixtures)
    Broker,
    RoundsWorld,
    _test_kek,
    broker_fixture,
    registry,
    training_registry,
    world_fixture,
)
from tests.fixtures.chain import own_chain_fixture

pytestmark = pytest.mark.django_db


deployed_contracts = own_chain_fixture()  # evm_revert must not touch other tests' chain


def test_updates_and_a_version_dropped_by_a_reorg_are_queued_then_confirmed_again(
    world: RoundsWorld, broker: Broker
) -> None:
    job = world.job(rounds=1)
    world.running_train_round(job, broker)
    drain_outbox()
    with world.committed():
        rounds.receive_update(**world.update(job, "general"))
        rounds.receive_update(**world.update(job, "clinic"))
        rounds.aggregate_round(job=job, number=1)
    w3 = world.personas.chain.w3
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    drain_outbox()

    def updates() -> list[RoundUpdate]:
        return list(RoundUpdate.objects.filter(round__job=job, round__number=1))

    version = ModelVersion.objects.get(job=job, round=1)
    assert {row.chain_status for row in updates()} == {"confirmed"} and version.chain_status == "confirmed"
    mined_at = min(row.chain_block or 0 for row in updates())

    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    w3.provider.make_request(RPCEndpoint("anvil_mine"), ["0x4"])
    report = indexer.sync_chain()
    assert report.reorg_fork is not None and report.reorg_fork <= mined_at
    version.refresh_from_db()
    assert {(row.chain_status, row.chain_block) for row in updates()} == {("queued", None)}
    assert (version.chain_status, version.chain_block) == ("queued", None)

    drain_outbox()
    version.refresh_from_db()
    assert {row.chain_status for row in updates()} == {"confirmed"} and version.chain_status == "confirmed"
