"""Is the node we talk to the chain our contracts were deployed on? A chain id says too little: a reset dev
chain (same port, same id, head 0) or a wrong ETH_RPC_URL has it too. Deployment rows record the genesis
block's hash and the deployment block's (number, hash); `require_deployed_chain()` compares them with
the node before anything writes (the relayer, the indexer, the outbox), and raises WrongChain, which the
API answers with 503 `wrong_chain`. An answer is kept for CHECK_TTL_S, so hot paths stay one dict lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from contracts import client
from contracts.models import Deployment
from healthhash.errors import Unavailable

log = logging.getLogger(__name__)

CHECK_TTL_S = 5.0


class WrongChain(Unavailable):
    """The node answers, but it is not the chain the recorded deployments are on."""

    code = "wrong_chain"


@dataclass(frozen=True)
class RecordedIdentity:
    genesis_hash: str
    blocks: dict[int, str]  # deployment block number -> its hash, as recorded

    @property
    def empty(self) -> bool:
        return not self.genesis_hash and not self.blocks


_checked: dict[str, tuple[float, str | None]] = {}  # rpc url -> (when, mismatch or None)
_lock = threading.Lock()


def forget() -> None:
    """Drop cached answers (client.reset_caches calls this; so do tests that change the chain)."""
    with _lock:
        _checked.clear()


def recorded_identity(chain: int) -> RecordedIdentity:
    rows = Deployment.objects.filter(chain_id=chain).values_list("genesis_hash", "block_number", "block_hash")
    genesis = next((g for g, _, _ in rows if g), "")
    return RecordedIdentity(genesis, {number: h for _, number, h in rows if h})


def identity_calls(identity: RecordedIdentity) -> list[tuple[str, list[object]]]:
    """The JSON-RPC calls whose answers `mismatch` needs (genesis first, then each deployment block)."""
    numbers = [0, *sorted(n for n in identity.blocks if n != 0)]
    return [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]


def mismatch(identity: RecordedIdentity, answers: list[dict[str, str] | None]) -> str | None:
    """What differs between the recorded identity and the node's blocks (the answers to identity_calls),
    in one plain sentence; None when they agree."""
    numbers = [0, *sorted(n for n in identity.blocks if n != 0)]
    found = {n: (block or {}).get("hash") for n, block in zip(numbers, answers, strict=True)}
    if identity.genesis_hash and found[0] != identity.genesis_hash:
        recorded = _short(identity.genesis_hash)
        return f"its genesis block is {_short(found[0])}, the deployment recorded {recorded}"
    for number, recorded in sorted(identity.blocks.items()):
        if found.get(number) is None:
            return f"it has no block {number}, where the contracts were deployed"
        if found[number] != recorded:
            return (
                f"its block {number} is {_short(found[number])}, "
                f"the contracts were deployed in {_short(recorded)}"
            )
    return None


def _short(block_hash: str | None) -> str:
    return f"{block_hash[:10]}…" if block_hash else "missing"


def wrong_chain_message(chain: int, difference: str) -> str:
    return (
        f"the node at {client.shown_url(client.rpc_url())} (chain {chain}) is not the chain the contracts "
        f"were deployed on: {difference}. Nothing is written to it: point ETH_RPC_URL at the right node, "
        "or, if that chain is gone for good, redeploy with `manage.py deploy_contracts`"
    )


def require_deployed_chain() -> None:
    """Raise WrongChain when the node is not the deployments' chain (ChainUnavailable when it is down).
    Deployments recorded before the identity fields existed are not checked."""
    url = client.rpc_url()
    now = time.monotonic()
    with _lock:
        cached = _checked.get(url)
    if cached is not None and now - cached[0] < CHECK_TTL_S:
        difference = cached[1]
    else:
        chain = client.chain_id()
        identity = recorded_identity(chain)
        difference = None
        if not identity.empty:
            difference = mismatch(identity, client.rpc_batch(identity_calls(identity)))
        with _lock:
            _checked[url] = (now, difference)
        if difference is not None:
            log.error("%s", wrong_chain_message(chain, difference))
    if difference is not None:
        raise WrongChain(wrong_chain_message(client.chain_id(), difference))


def require_deployed_chain_if_reachable() -> None:
    """As require_deployed_chain, but a node that does not answer passes: the write is queued, and the
    relayer checks again before it sends anything."""
    try:
        require_deployed_chain()
    except client.ChainUnavailable:
        pass
