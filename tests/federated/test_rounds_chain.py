"""What the chain says about updates and model versions comes back through the indexer: an update the
contract skips (here: its signature's deadline passed before the relayer got it mined) is marked failed with
the contract's reason, while the round's result stands."""

from __future__ import annotations

import pytest

from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from federated import rounds
from federated.models import ModelVersion, RoundUpdate, TrainingRound
from tests.federated.rounds_setup import (  # noqa: F401  (fixtures)
    Broker,
    RoundsWorld,
    _test_kek,
    broker_fixture,
    registry,
    training_registry,
    world_fixture,
)
from tests.fixtures.chain import ChainClock

pytestmark = pytest.mark.django_db


def test_an_update_the_contract_skips_is_marked_failed_with_its_reason(
    world: RoundsWorld, broker: Broker, chain_clock: ChainClock
) -> None:
    job = world.job(rounds=1)
    training_round = world.running_train_round(job, broker)
    drain_outbox()  # version 0 on chain
    with world.committed():
        general, _ = rounds.receive_update(**world.update(job, "general"))
        rounds.receive_update(**world.update(job, "clinic"))
        rounds.aggregate_round(job=job, number=1)

    assert general.deadline is not None
    chain_clock.advance_past(general.deadline)  # the relayer was down until after the deadline
    drain_outbox()
    for row in RoundUpdate.objects.filter(round=training_round):
        assert row.chain_status == "failed" and row.chain_error == "DeadlineExpired"
        assert row.chain_block is not None
        assert row.outbox_item is not None and row.outbox_item.status == OutboxItem.Status.FAILED
    version = ModelVersion.objects.get(job=job, round=1)
    assert version.chain_status == "confirmed"  # the operator's publication has no deadline
    assert TrainingRound.objects.get(pk=training_round.pk).status == TrainingRound.Status.DONE
