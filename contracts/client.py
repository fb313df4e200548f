"""THE JSON-RPC module: every read or write that reaches the node goes through here.

An empty `settings.ETH_RPC_URL` means the project's own dev chain (anvil on `settings.DEV_CHAIN_PORT`,
state under `settings.DEV_CHAIN_STATE`). Nothing here starts it on demand: only `manage.py devchain`,
`manage.py demo` (through `running_dev_chain()`) and the test session start a chain, and stop it when
they end. A node that does not answer raises `ChainUnavailable` naming the URL, which the API maps to 503.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from healthhash.errors import DomainError, Unavailable

log = logging.getLogger(__name__)

# Ether the dev chain gives the relayer on every start (anvil_setBalance), far beyond any demo's gas.
DEV_RELAYER_BALANCE_WEI = 10_000 * 10**18
RPC_TIMEOUT_S = 10

_web3_by_url: dict[str, Web3] = {}
_chain_id_by_url: dict[str, int] = {}


class ChainUnavailable(Unavailable):
    """The node does not answer (connection refused, timeout)."""

    code = "chain_unavailable"


class ChainRpcError(DomainError):
    """The node answered with a JSON-RPC error."""

    code = "chain_rpc_error"

    def __init__(self, detail: str, *, rpc_code: int | None = None, data: Any = None) -> None:
        super().__init__(detail)
        self.rpc_code = rpc_code
        self.data = data


class ContractNotDeployed(Unavailable):
    code = "contract_not_deployed"


@contextmanager
def node_errors() -> Iterator[None]:
    """Translate transport failures into ChainUnavailable."""
    try:
        yield
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.HTTPError,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise ChainUnavailable(no_node_message(exc.__class__.__name__)) from exc


def no_node_message(cause: str) -> str:
    """Says plainly which URL did not answer and how to get a node there (no credentials in it)."""
    if settings.ETH_RPC_URL:
        hint = "check ETH_RPC_URL and that node"
    else:
        hint = "ETH_RPC_URL is empty (the dev chain): start it with `manage.py devchain` or `make demo`"
    return f"no chain node answers at {shown_url(rpc_url())} ({cause}); {hint}"


def shown_url(url: str) -> str:
    """`url` without user, password, path or query, which may carry an API key (e.g. .../v3/<key>)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: not worth showing
        port = ""
    where = f"{parts.scheme}://{parts.hostname or '?'}{port}"
    return where + ("/…" if parts.path.strip("/") or parts.query else "")


def dev_chain_url() -> str:
    return f"http://127.0.0.1:{settings.DEV_CHAIN_PORT}"


def rpc_url() -> str:
    """The node URL in use: ETH_RPC_URL, else the dev chain's port (which nothing here starts)."""
    return settings.ETH_RPC_URL or dev_chain_url()


def get_web3() -> Web3:
    url = rpc_url()
    w3 = _web3_by_url.get(url)
    if w3 is None:
        # No transport retries inside web3: callers (relayer, indexer) retry on their next run, and a
        # request should fail fast with ChainUnavailable rather than sleep through back-offs.
        provider = Web3.HTTPProvider(
            url, request_kwargs={"timeout": RPC_TIMEOUT_S}, exception_retry_configuration=None
        )
        w3 = Web3(provider)
        _web3_by_url[url] = w3
    return w3


def rpc(method: str, params: list[Any] | None = None) -> Any:
    """A raw JSON-RPC call (no web3 result formatting: hex strings in, hex strings out)."""
    w3 = get_web3()
    with node_errors():
        response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    if "error" in response:
        error = response["error"]
        raise ChainRpcError(str(error.get("message")), rpc_code=error.get("code"), data=error.get("data"))
    return response["result"]


def rpc_batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """Several raw calls in one HTTP round trip; results in call order."""
    if not calls:
        return []
    w3 = get_web3()
    with node_errors():
        # w3.provider is typed as the base class; the HTTP provider in use has make_batch_request.
        responses = w3.provider.make_batch_request(calls)  # type: ignore[attr-defined]
    if isinstance(responses, dict):  # the node rejected the whole batch
        raise ChainRpcError(str(responses.get("error")))
    by_id = sorted(responses, key=lambda r: r["id"])
    for response in by_id:
        if "error" in response:
            raise ChainRpcError(str(response["error"].get("message")), data=response["error"].get("data"))
    return [r["result"] for r in by_id]


def rpc_batch_within(calls: list[tuple[str, list[Any]]], *, timeout_s: float) -> list[Any]:
    """`rpc_batch` that gives up after `timeout_s` (the health check): a node that hangs must not hold the
    caller for RPC_TIMEOUT_S. Raises ChainUnavailable or ChainRpcError like the others."""
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    with node_errors():
        response = requests.post(rpc_url(), json=payload, timeout=timeout_s)
        response.raise_for_status()
    answers = response.json()
    if not isinstance(answers, list):  # the node rejected the whole batch
        raise ChainRpcError(str(answers.get("error") if isinstance(answers, dict) else answers))
    by_id = sorted(answers, key=lambda r: r["id"])
    for answer in by_id:
        if "error" in answer:
            raise ChainRpcError(str(answer["error"].get("message")), data=answer["error"].get("data"))
    return [answer["result"] for answer in by_id]


def reset_caches() -> None:
    """Forget cached connections, chain ids, accounts and identity checks (tests switch ETH_RPC_URL)."""
    from contracts import chain_identity  # it builds on this module

    _web3_by_url.clear()
    _chain_id_by_url.clear()
    _account_from_key.cache_clear()
    chain_identity.forget()


def chain_id() -> int:
    """The node's chain id (asked once per URL). With the node down, the chain our contracts were last
    deployed on: signed payloads can still be verified and queued, and go out when the node is back."""
    url = rpc_url()
    if url not in _chain_id_by_url:
        try:
            _chain_id_by_url[url] = int(rpc("eth_chainId"), 16)
        except ChainUnavailable:
            from contracts.models import Deployment

            known = Deployment.objects.order_by("-deployed_at").values_list("chain_id", flat=True).first()
            if known is None:
                raise
            log.warning(
                "chain node at %s is down; assuming chain %s, where the contracts are deployed", url, known
            )
            return int(known)
    return _chain_id_by_url[url]


def latest_block() -> int:
    return int(rpc("eth_blockNumber"), 16)


@lru_cache(maxsize=4)
def _account_from_key(private_key: str) -> LocalAccount:
    return Account.from_key(private_key)


def relayer_account() -> LocalAccount:
    return _account_from_key(settings.RELAYER_PRIVATE_KEY)


def deployment_address(name: str, *, chain: int | None = None) -> str:
    from contracts.models import Deployment

    chain = chain_id() if chain is None else chain
    row = Deployment.objects.filter(chain_id=chain, name=name).only("address").first()
    if row is None:
        raise ContractNotDeployed(
            f"{name} is not deployed on chain {chain}; run `manage.py deploy_contracts`"
        )
    return row.address


def contract(name: str) -> Contract:
    """The web3 Contract `name` at its recorded address on the current chain."""
    from contracts.artifacts import load_artifact

    address = to_checksum_address(deployment_address(name))
    return get_web3().eth.contract(address=address, abi=load_artifact(name).abi)


def call(name: str, fn_name: str, *args: Any, block_identifier: Any = "latest") -> Any:
    """A read-only eth_call of a project contract's function."""
    fn = getattr(contract(name).functions, fn_name)(*args)
    with node_errors():
        try:
            return fn.call(block_identifier=block_identifier)
        except Web3RPCError as exc:
            raise ChainRpcError(str(exc)) from exc


def fund_relayer(*, balance_wei: int = DEV_RELAYER_BALANCE_WEI) -> None:
    """Give the relayer ether on an anvil node (dev and tests only)."""
    rpc("anvil_setBalance", [relayer_account().address, hex(balance_wei)])


def answers(url: str) -> bool:
    try:
        response = requests.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2
        )
        return response.ok and "result" in response.json()
    except (requests.RequestException, ValueError):
        return False


def _fund_at(url: str) -> None:
    requests.post(
        url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "anvil_setBalance",
            "params": [relayer_account().address, hex(DEV_RELAYER_BALANCE_WEI)],
        },
        timeout=RPC_TIMEOUT_S,
    ).raise_for_status()


@dataclass(frozen=True)
class DevChain:
    url: str
    started: bool  # True: this process started it and stops it on the way out


@contextmanager
def running_dev_chain() -> Iterator[DevChain]:
    """For the commands that own the dev chain (`manage.py demo`): the anvil that already answers on
    DEV_CHAIN_PORT, else one started here (relayer funded) and stopped when the block ends, however it
    ends (an exception, SystemExit from SIGTERM, Ctrl-C): anvil dumps its state and no process is left."""
    from contracts.node import start_anvil

    url = dev_chain_url()
    if answers(url):
        yield DevChain(url=url, started=False)
        return
    settings.DEV_CHAIN_STATE.parent.mkdir(parents=True, exist_ok=True)
    try:
        node = start_anvil(port=settings.DEV_CHAIN_PORT, state_path=settings.DEV_CHAIN_STATE)
    except Exception as exc:
        raise ChainUnavailable(f"could not start the dev chain on {url}: {exc}") from exc
    try:
        _fund_at(node.rpc_url)  # state may be fresh (or loaded from an old dump): fund on every start
        log.debug("started the dev chain at %s (state %s)", node.rpc_url, settings.DEV_CHAIN_STATE)
        yield DevChain(url=node.rpc_url, started=True)
    finally:
        node.stop()
