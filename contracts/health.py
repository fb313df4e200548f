"""The chain's part of GET /api/health (see healthhash/health.py): the node answers, with its chain id and
head block; every project contract has a recorded deployment on that chain with code at its address; the
node is the chain they were deployed on (genesis and deployment block hashes); and how far the indexer
has got. Two JSON-RPC round trips, each bounded by the check's time budget."""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError

from contracts import chain_identity, client
from contracts.deploy import DEPENDS_ON
from contracts.models import Deployment, IndexerCursor
from healthhash.health import ComponentHealth

log = logging.getLogger(__name__)

PROJECT_CONTRACTS = tuple(DEPENDS_ON)


def check_chain(timeout_s: float) -> ComponentHealth:
    started = time.monotonic()
    try:
        chain_hex, head_hex = client.rpc_batch_within(
            [("eth_chainId", []), ("eth_blockNumber", [])], timeout_s=timeout_s
        )
    except client.ChainUnavailable as exc:
        log.warning("health: %s", exc.detail)
        return ComponentHealth.down("no chain node answers at ETH_RPC_URL (or the dev chain's port)")
    except client.ChainRpcError:
        return ComponentHealth.down("the node refused eth_chainId or eth_blockNumber")
    chain, head = int(chain_hex, 16), int(head_hex, 16)
    where = f"chain {chain}, head block {head}"
    try:
        addresses = dict(Deployment.objects.filter(chain_id=chain).values_list("name", "address"))
        cursor = IndexerCursor.objects.filter(chain_id=chain).values_list("last_block", flat=True).first()
        identity = chain_identity.recorded_identity(chain)
    except DatabaseError:
        return ComponentHealth.down(f"{where}; deployments unknown (the database does not answer)")
    missing = [name for name in PROJECT_CONTRACTS if name not in addresses]
    if missing:
        return ComponentHealth.down(f"{where}; not deployed: {', '.join(missing)}")
    remaining = max(0.05, timeout_s - (time.monotonic() - started))
    identity_calls = [] if identity.empty else chain_identity.identity_calls(identity)
    try:
        answers = client.rpc_batch_within(
            [("eth_getCode", [addresses[name], "latest"]) for name in PROJECT_CONTRACTS] + identity_calls,
            timeout_s=remaining,
        )
    except (client.ChainUnavailable, client.ChainRpcError):
        return ComponentHealth.down(f"{where}; the node stopped answering (eth_getCode)")
    codes = answers[: len(PROJECT_CONTRACTS)]
    if identity_calls:
        difference = chain_identity.mismatch(identity, answers[len(PROJECT_CONTRACTS) :])
        if difference is not None:
            return ComponentHealth.down(
                f"{where}; not the chain the contracts were deployed on ({difference}): writes are refused"
            )
    empty = [name for name, code in zip(PROJECT_CONTRACTS, codes, strict=True) if code in ("0x", "0x0", None)]
    if empty:
        return ComponentHealth.down(f"{where}; no code at the recorded address of {', '.join(empty)}")
    indexed = "not indexed yet" if cursor is None else f"indexed to block {cursor}"
    return ComponentHealth.ok(f"{where}, {len(PROJECT_CONTRACTS)} contracts deployed, {indexed}")
