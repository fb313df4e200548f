"""Idempotent deployment of the project contracts with the relayer account, recorded per chain id.

Re-running with this contract's code at every recorded address (its recorded code hash; for rows from
before code hashes were recorded, the artifact's runtime bytecode with immutables masked), unchanged
sources and the same chain (genesis and deployment block hashes) deploys nothing. Anything else (a changed
source, no code or another contract's code at the address, another chain with the same id) redeploys
that contract and whatever depends on it (ConsentRegistry and TrainingRegistry point at Directory), and
says why. Each row records the chain identity that contracts/chain_identity.py checks before writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from eth_utils import keccak, to_checksum_address

from contracts import chain_identity, client, outbox
from contracts.artifacts import load_artifact
from contracts.lease import heartbeat, relayer_lease
from contracts.models import ChainTx, Deployment, IndexedBlock, IndexerCursor, OutboxItem
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


def _code_of(address: str) -> bytes:
    code = client.rpc("eth_getCode", [address, "latest"]) or "0x"
    return bytes.fromhex(code.removeprefix("0x"))


def code_hash(code: bytes) -> str:
    return "0x" + keccak(code).hex()


def matches_artifact(name: str, code: bytes) -> bool:
    """Runtime `code` is the artifact's deployed bytecode, immutables aside: the compiler leaves each
    immutable as zero bytes in the artifact, which the constructor fills in (so only those may differ)."""
    expected = bytes.fromhex(load_artifact(name).deployed_bytecode.removeprefix("0x"))
    return len(code) == len(expected) and all(a == b or a == 0 for a, b in zip(expected, code, strict=True))


def _block_hash(number: int | str) -> str | None:
    block = client.rpc("eth_getBlockByNumber", [hex(number) if isinstance(number, int) else number, False])
    return block["hash"] if block else None


def _why_redeploy(
    row: Deployment | None, source_hash: str, redeployed: set[str], name: str, genesis: str | None
) -> str | None:
    if row is None:
        return FIRST_DEPLOYMENT
    if row.source_hash != source_hash:
        return "source changed"
    code = _code_of(row.address)
    if not code:
        return "no code at the recorded address (chain reset?)"
    # Some code is not enough: after a reset, another of our contracts can sit at the recorded address.
    if not (code_hash(code) == row.code_hash if row.code_hash else matches_artifact(name, code)):
        return "the code at the recorded address is not this contract's (chain reset?)"
    if row.genesis_hash and row.genesis_hash != genesis:
        return "recorded on another chain with this id (its genesis block differs)"
    if row.block_hash and _block_hash(row.block_number) != row.block_hash:
        return "its deployment block is no longer on this chain"
    if redeployed & set(DEPENDS_ON[name]):
        return "a contract it points at was redeployed"
    return None


def _record_identity(row: Deployment, genesis: str | None) -> None:
    """A row kept as it is, recorded before the chain identity was: fill it in now (its code matched)."""
    if row.genesis_hash and row.block_hash and row.code_hash:
        return
    block_hash = _block_hash(row.block_number)
    row.genesis_hash = row.genesis_hash or genesis or ""
    row.block_hash = row.block_hash or block_hash or ""
    row.code_hash = row.code_hash or code_hash(_code_of(row.address))
    row.save(update_fields=["genesis_hash", "block_hash", "code_hash"])


def deploy_contracts(
    *, consortium_admin: str | None = None, say: Callable[[str], None] = log.info
) -> list[DeployResult]:
    """Deploy what is missing or stale on the current chain; returns one result per contract."""
    chain = client.chain_id()
    results: list[DeployResult] = []
    addresses: dict[str, str] = {}
    redeployed: set[str] = set()
    with relayer_lease():
        genesis = _block_hash(0)
        _leave_replaced_chain(chain, genesis)
        for name in DEPENDS_ON:
            artifact = load_artifact(name)
            row = Deployment.objects.filter(chain_id=chain, name=name).first()
            reason = _why_redeploy(row, artifact.source_hash, redeployed, name, genesis)
            if reason is None:
                assert row is not None
                _record_identity(row, genesis)
                addresses[name] = row.address
                results.append(DeployResult(name, row.address, False, "up to date"))
                continue
            args = _constructor_args(name, addresses, consortium_admin)
            deployed = _deploy_one(name, args)
            with transaction.atomic():
                Deployment.objects.update_or_create(
                    chain_id=chain,
                    name=name,
                    defaults={
                        "address": deployed.address,
                        "tx_hash": deployed.tx_hash,
                        "block_number": deployed.block_number,
                        "block_hash": deployed.block_hash,
                        "genesis_hash": genesis or "",
                        "code_hash": deployed.code_hash,
                        "source_hash": artifact.source_hash,
                    },
                )
            addresses[name] = deployed.address
            redeployed.add(name)
            results.append(DeployResult(name, deployed.address, True, reason))
            where = f"{deployed.address} on chain {chain}, block {deployed.block_number}"
            say(f"{name} deployed at {where} ({reason})")
    chain_identity.forget()  # the identity just recorded is the one to check from now on
    return results


REPLACED = "chain_replaced"


def _leave_replaced_chain(chain: int, genesis: str | None) -> None:
    """Deploying on a chain that replaced the recorded one (same id, another genesis: a reset dev chain).

    What the indexer and the relayer hold of the old chain must not be taken for the new one's: its
    block hashes would look like a re-org from block 0 (every indexed event dropped, every mined
    transaction put back in flight and re-sent), so they are forgotten and the indexer starts at the new
    deployments. Transactions still in flight there can never mine: their items fail with
    `chain_replaced` (`relay --retry-failed chain_replaced` sends them again). Indexed events, consents
    and settled transactions stay, as the old chain's history.
    """
    recorded = Deployment.objects.filter(chain_id=chain).exclude(genesis_hash="")
    if not recorded.exclude(genesis_hash=genesis or "").exists():
        return
    with transaction.atomic():
        IndexedBlock.objects.filter(chain_id=chain).delete()
        IndexerCursor.objects.filter(chain_id=chain).delete()
        in_flight = ChainTx.objects.filter(chain_id=chain, status=ChainTx.Status.SIGNED)
        items = list(
            OutboxItem.objects.filter(chain_tx__in=in_flight, status=OutboxItem.Status.SENT).values_list(
                "pk", flat=True
            )
        )
        OutboxItem.objects.filter(pk__in=items).update(
            status=OutboxItem.Status.FAILED,
            error_code=REPLACED,
            error_detail="sent to a chain that was replaced before it was mined",
            updated_at=timezone.now(),
        )
        outbox.items_failed(items)
        in_flight.update(status=ChainTx.Status.DROPPED, error_detail="the chain was replaced")
    log.warning("chain %s was replaced (another genesis block): its indexer state is forgotten", chain)


@dataclass(frozen=True)
class Deployed:
    address: str
    tx_hash: str
    block_number: int
    block_hash: str
    code_hash: str


def _deploy_one(name: str, args: list[Any]) -> Deployed:
    """Sign and send the creation transaction, wait for it; returns where and in which block it is."""
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
    address = to_checksum_address(receipt["contractAddress"])
    code = bytes.fromhex((client.rpc("eth_getCode", [address, receipt["blockNumber"]]) or "0x")[2:])
    if not matches_artifact(name, code):
        raise DeployError(f"{name} deployment {tx_hash} left code that is not {name}'s at {address}")
    return Deployed(address, tx_hash, int(receipt["blockNumber"], 16), receipt["blockHash"], code_hash(code))
