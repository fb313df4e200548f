"""Idempotent deployment of the project contracts with the relayer account, recorded per chain id.

Re-running with code at every recorded address and unchanged sources deploys nothing. A changed source
hash, or no code at the recorded address (a reset chain), redeploys that contract and whatever depends
on it (ConsentRegistry and TrainingRegistry point at Directory), and says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from eth_utils import to_checksum_address

from contracts import client
from contracts.artifacts import load_artifact
from contracts.lease import heartbeat, relayer_lease
from contracts.models import Deployment
from healthhash.errors import DomainError

log = logging.getLogger(__name__)

RECEIPT_TIMEOUT_S = 60.0


class DeployError(DomainError):
    code = "deploy_error"


FIRST_DEPLOYMENT = "first deployment on this chain"


@dataclass(frozen=True)
class DeployResult:
    name: str
    address: str
    deployed: bool
    reason: str  # "up to date", "first deployment on this chain", "source changed", ...

    def summary(self) -> str:
        """One plain line for a person: what happened to this contract, where it is now, and why."""
        if not self.deployed:
            return f"{self.name}: already deployed at {self.address} ({self.reason})"
        verb = "deployed" if self.reason == FIRST_DEPLOYMENT else "redeployed"
        return f"{self.name}: {verb} at {self.address} ({self.reason})"


def _constructor_args(name: str, addresses: dict[str, str], consortium_admin: str | None) -> list[Any]:
    if name == "Directory":
        if not consortium_admin:
            raise DeployError("Directory needs a consortium admin address (--consortium-admin)")
        return [to_checksum_address(consortium_admin)]
    if name == "ConsentRegistry":
        return [addresses["Directory"]]
    if name == "TrainingRegistry":
        # The relayer publishes model versions (OPERATOR_ROLE) and may grant the role to others.
        return [addresses["Directory"], client.relayer_account().address]
    return [client.relayer_account().address]  # Anchors: the relayer writes anchors


# name -> the contracts whose address its constructor takes
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "Directory": (),
    "ConsentRegistry": ("Directory",),
    "Anchors": (),
    "TrainingRegistry": ("Directory",),
}


def _why_redeploy(row: Deployment | None, source_hash: str, redeployed: set[str], name: str) -> str | None:
    if row is None:
        return FIRST_DEPLOYMENT
    if row.source_hash != source_hash:
        return "source changed"
    if client.rpc("eth_getCode", [row.address, "latest"]) in ("0x", "0x0", None):
        return "no code at the recorded address (chain reset?)"
    if redeployed & set(DEPENDS_ON[name]):
        return "a contract it points at was redeployed"
    return None


def deploy_contracts(
    *, consortium_admin: str | None = None, say: Callable[[str], None] = log.info
) -> list[DeployResult]:
    """Deploy what is missing or stale on the current chain; returns one result per contract."""
    chain = client.chain_id()
    results: list[DeployResult] = []
    addresses: dict[str, str] = {}
    redeployed: set[str] = set()
    with relayer_lease():
        for name in DEPENDS_ON:
            artifact = load_artifact(name)
            row = Deployment.objects.filter(chain_id=chain, name=name).first()
            reason = _why_redeploy(row, artifact.source_hash, redeployed, name)
            if reason is None:
                assert row is not None
                addresses[name] = row.address
                results.append(DeployResult(name, row.address, False, "up to date"))
                continue
            args = _constructor_args(name, addresses, consortium_admin)
            address, tx_hash, block = _deploy_one(name, args)
            with transaction.atomic():
                Deployment.objects.update_or_create(
                    chain_id=chain,
                    name=name,
                    defaults={
                        "address": address,
                        "tx_hash": tx_hash,
                        "block_number": block,
                        "source_hash": artifact.source_hash,
                    },
                )
            addresses[name] = address
            redeployed.add(name)
            results.append(DeployResult(name, address, True, reason))
            say(f"{name} deployed at {address} on chain {chain}, block {block} ({reason})")
    return results


def _deploy_one(name: str, args: list[Any]) -> tuple[str, str, int]:
    """Sign and send the creation transaction, wait for it; returns (address, tx hash, block)."""
    artifact = load_artifact(name)
    account = client.relayer_account()
    factory = client.get_web3().eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*args).data_in_transaction
    call = {"from": account.address, "data": data}
    try:
        gas = int(client.rpc("eth_estimateGas", [call]), 16)
    except client.ChainRpcError as exc:
        raise DeployError(f"{name} constructor would revert: {exc}") from exc
    latest = client.rpc("eth_getBlockByNumber", ["latest", False])
    tip = int(client.rpc("eth_maxPriorityFeePerGas"), 16)
    tx = {
        "data": data,
        "value": 0,
        "gas": int(gas * 1.2),
        "chainId": client.chain_id(),
        "nonce": int(client.rpc("eth_getTransactionCount", [account.address, "pending"]), 16),
        "maxFeePerGas": 2 * int(latest.get("baseFeePerGas") or "0x0", 16) + tip,
        "maxPriorityFeePerGas": tip,
    }
    signed = account.sign_transaction(tx)
    tx_hash = client.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while (receipt := client.rpc("eth_getTransactionReceipt", [tx_hash])) is None:
        heartbeat()  # a slow chain's block time can outlast the relayer lease held for the deploy
        if time.monotonic() > deadline:
            raise DeployError(f"{name} deployment {tx_hash} not mined within {RECEIPT_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    if int(receipt["status"], 16) != 1:
        raise DeployError(f"{name} deployment {tx_hash} reverted")
    return to_checksum_address(receipt["contractAddress"]), tx_hash, int(receipt["blockNumber"], 16)
