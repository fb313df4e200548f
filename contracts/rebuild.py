"""`sync_chain --rebuild [--from-block N]`: derive the indexed tables again from the chain itself.

A plain sync never re-runs a handler for an event it already stored, so rows lost or damaged in the
database stay lost. A rebuild drops the stored events (and recorded block hashes) from block N on, lets
every app undo what those blocks did, and replays them through the same handlers as new, in one database
transaction: readers see the old tables until the new ones are complete.

It is not a re-org: the chain did not change, so the relayer's outbox (what only the database knows:
pending and failed chain writes) is left alone, and an app may register a `reset` that differs from its
re-org rewind (keep rows whose ids others point at) and a `reconcile` that re-attaches what only the
database knew (pending intents, scope texts) after the replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from contracts import chain_identity, client, indexer, lease
from contracts.models import ChainEvent, IndexedBlock, IndexerCursor
from healthhash.errors import DomainError

BlockCallback = Callable[[int], None]

# re-org rewind callback -> what a rebuild calls instead (None: nothing; the rows are the database's own)
_resets: dict[BlockCallback, BlockCallback | None] = {}
_reconciles: list[BlockCallback] = []


class NothingToRebuild(DomainError):
    code = "nothing_deployed"


def register_replay(
    *, rewind: BlockCallback, reset: BlockCallback | None, reconcile: BlockCallback | None = None
) -> None:
    """During a rebuild from block N, call `reset(N)` instead of the re-org callback `rewind` (None: skip
    it), and `reconcile(N)` once the replay is done, still inside the rebuild's transaction."""
    _resets[rewind] = reset
    if reconcile is not None and reconcile not in _reconciles:
        _reconciles.append(reconcile)


@dataclass
class RebuildReport:
    from_block: int
    head: int
    dropped_events: int
    replayed_events: int
    seconds: float


def rebuild(*, from_block: int | None = None, lease_wait_s: float = 30.0) -> RebuildReport:
    """Replay the chain from `from_block` (default: the first deployment block) through the handlers.

    Holds the relayer's lease while it works, so no receipt is ingested into half-rebuilt tables.
    Raises WrongChain on a node that is not the deployments' chain, NothingToRebuild without deployments.
    """
    started = time.perf_counter()
    chain = client.chain_id()
    if not indexer.contract_addresses(chain):
        raise NothingToRebuild(f"no contracts are recorded for chain {chain}; run deploy_contracts first")
    chain_identity.require_deployed_chain()
    first = indexer.first_deployment_block(chain)
    start = first if from_block is None else max(first, from_block)
    with lease.relayer_lease(wait_s=lease_wait_s), transaction.atomic():
        dropped, _ = ChainEvent.objects.filter(chain_id=chain, block_number__gte=start).delete()
        IndexedBlock.objects.filter(chain_id=chain, number__gte=start).delete()
        below = IndexedBlock.objects.filter(chain_id=chain, number=start - 1).first()
        IndexerCursor.objects.update_or_create(
            chain_id=chain, defaults={"last_block": start - 1, "last_block_hash": below.hash if below else ""}
        )
        for callback in indexer.rewind_callbacks():
            reset = _resets.get(callback, callback)
            if reset is not None:
                reset(start)
        replayed = indexer.replay(chain, start)
        for reconcile in _reconciles:
            reconcile(start)
    return RebuildReport(
        from_block=start,
        head=replayed.head or 0,
        dropped_events=dropped,
        replayed_events=replayed.new_events,
        seconds=time.perf_counter() - started,
    )
