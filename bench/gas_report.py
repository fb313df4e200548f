"""Measures the gas of HealthHash's contract paths with real receipts on a dev chain and prints the figures.

`measure_gas(w3, contracts)` is what the benchmark calls; `python -m bench.gas_report` starts its own
anvil, deploys, measures and prints. Needs a node with unlocked funded accounts (anvil).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from contracts.artifacts import load_artifact
from contracts.codec import signed_grant_args, signed_revoke_args
from contracts.typed_data import grant_typed_data, hospital_id, revoke_typed_data

BATCH_SIZE = 100
TX_BASE_GAS = 21_000
_ZERO = "0x" + "00" * 20


def _send(fn: Any, sender: str) -> int:
    """Sends the call, waits, returns gasUsed; raises if it reverted."""
    receipt = fn.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError("measured transaction reverted")
    return int(receipt["gasUsed"])


def _deploy(w3: Web3, name: str, *args: Any, sender: str) -> tuple[Contract, int]:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi), int(receipt["gasUsed"])


def measure_deploy_gas(w3: Web3, *, sender: str) -> tuple[dict[str, int], dict[str, Contract]]:
    """Deploys a fresh set with `sender` as consortium and anchor admin; returns (gas by name, contracts)."""
    directory, directory_gas = _deploy(w3, "Directory", sender, sender=sender)
    registry, registry_gas = _deploy(w3, "ConsentRegistry", directory.address, sender=sender)
    anchors, anchors_gas = _deploy(w3, "Anchors", sender, sender=sender)
    figures = {
        "deploy_Directory": directory_gas,
        "deploy_ConsentRegistry": registry_gas,
        "deploy_Anchors": anchors_gas,
    }
    return figures, {"Directory": directory, "ConsentRegistry": registry, "Anchors": anchors}


def _setup_grantees(directory: Contract, *, relayer: str, count: int = 2) -> list[str]:
    """Registers a fresh hospital (admin = relayer) with `count` doctors; returns the doctors' addresses."""
    consortium_admin = directory.functions.consortiumAdmin().call()
    hid = hospital_id("gas-report-" + os.urandom(8).hex())
    account = Account.create().address
    _send(directory.functions.execute((0, hid, account, relayer, 0, 0)), consortium_admin)
    doctors = [Account.create().address for _ in range(count)]
    for doctor in doctors:
        _send(directory.functions.execute((2, hid, doctor, _ZERO, 0, 0)), relayer)
    return doctors


def _signed_grant(registry: Contract, patient: LocalAccount, grantee: str, deadline: int, version: int = 0):
    payload = grant_typed_data(
        chain_id=registry.w3.eth.chain_id,
        verifying_contract=registry.address,
        patient=patient.address,
        grantee=grantee,
        scope="chart",
        purpose=0,
        expires_at=0,
        version=version,
        deadline=deadline,
    )
    return signed_grant_args(
        payload["message"], Account.sign_typed_data(patient.key, full_message=payload).signature
    )


def _signed_revoke(registry: Contract, patient: LocalAccount, grantee: str, deadline: int, version: int):
    payload = revoke_typed_data(
        chain_id=registry.w3.eth.chain_id,
        verifying_contract=registry.address,
        patient=patient.address,
        grantee=grantee,
        scope="chart",
        purpose=0,
        version=version,
        deadline=deadline,
    )
    return signed_revoke_args(
        payload["message"], Account.sign_typed_data(patient.key, full_message=payload).signature
    )


def _measure_consents(w3: Web3, registry: Contract, doctors: list[str], relayer: str) -> dict[str, int]:
    chain_id = w3.eth.chain_id
    assert chain_id  # the signed domains read it; fail early on a dead node
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + 3600
    single = Account.create()
    figures = {
        "grantBySig_single": _send(
            registry.functions.grantBySig(_signed_grant(registry, single, doctors[0], deadline)), relayer
        )
    }
    figures["revokeBySig_single"] = _send(
        registry.functions.revokeBySig(_signed_revoke(registry, single, doctors[0], deadline, 1)), relayer
    )

    one = Account.create()
    figures["grantBatch_1"] = _send(
        registry.functions.grantBatch([_signed_grant(registry, one, doctors[0], deadline)]), relayer
    )
    figures["revokeBatch_1"] = _send(
        registry.functions.revokeBatch([_signed_revoke(registry, one, doctors[0], deadline, 1)]), relayer
    )

    patients = [Account.create() for _ in range(BATCH_SIZE)]
    grantees = [doctors[i % len(doctors)] for i in range(BATCH_SIZE)]
    grants = [_signed_grant(registry, p, g, deadline) for p, g in zip(patients, grantees, strict=True)]
    figures[f"grantBatch_{BATCH_SIZE}"] = _send(registry.functions.grantBatch(grants), relayer)
    revokes = [_signed_revoke(registry, p, g, deadline, 1) for p, g in zip(patients, grantees, strict=True)]
    figures[f"revokeBatch_{BATCH_SIZE}"] = _send(registry.functions.revokeBatch(revokes), relayer)

    for kind in ("grant", "revoke"):
        batch, base = figures[f"{kind}Batch_{BATCH_SIZE}"], figures[f"{kind}Batch_1"]
        figures[f"{kind}Batch_per_item"] = (batch - TX_BASE_GAS) // BATCH_SIZE
        figures[f"{kind}Batch_marginal_item"] = (batch - base) // (BATCH_SIZE - 1)
    return figures


def _measure_direct(registry: Contract, doctor: str, patient: str) -> dict[str, int]:
    scope = os.urandom(32)  # a fresh consent each run, so the grant always writes a new slot
    return {
        "grant_direct": _send(registry.functions.grant(doctor, scope, 0, 0), patient),
        "revoke_direct": _send(registry.functions.revoke(doctor, scope, 0), patient),
    }


def _measure_anchors(anchors: Contract, relayer: str) -> dict[str, int]:
    items = [(os.urandom(32), Account.create().address, os.urandom(32)) for _ in range(BATCH_SIZE)]
    first = _send(anchors.functions.anchorRecords(items), relayer)
    again = _send(anchors.functions.anchorRecords(items), relayer)
    root = _send(anchors.functions.anchorAuditRoot(os.urandom(32), 250, os.urandom(32)), relayer)
    return {
        f"anchorRecords_{BATCH_SIZE}": first,
        "anchorRecords_per_item": (first - TX_BASE_GAS) // BATCH_SIZE,
        f"anchorRecords_{BATCH_SIZE}_resend": again,
        "anchorAuditRoot": root,
    }


def measure_gas(w3: Web3, contracts: Mapping[str, Contract]) -> dict[str, int]:
    """Gas figures (receipts' gasUsed) for deploys, signed single/batched grants and revokes, direct calls
    and anchors. Uses `contracts` when their admins are unlocked on the node, else a fresh deployment."""
    unlocked = set(w3.eth.accounts)
    relayer, patient = w3.eth.accounts[0], w3.eth.accounts[1]
    figures, fresh = measure_deploy_gas(w3, sender=relayer)
    directory = contracts.get("Directory")
    registry = contracts.get("ConsentRegistry")
    if directory is None or registry is None or directory.functions.consortiumAdmin().call() not in unlocked:
        directory, registry = fresh["Directory"], fresh["ConsentRegistry"]
    anchors = contracts.get("Anchors")
    if (
        anchors is None
        or not anchors.functions.hasRole(anchors.functions.ANCHOR_ROLE().call(), relayer).call()
    ):
        anchors = fresh["Anchors"]
    doctors = _setup_grantees(directory, relayer=relayer)
    figures.update(_measure_consents(w3, registry, doctors, relayer))
    figures.update(_measure_direct(registry, doctors[0], patient))
    figures.update(_measure_anchors(anchors, relayer))
    return figures


TARGETS = {"grantBatch_per_item": 36_000, "revokeBatch_per_item": 16_000, "grantBySig_single": 70_000}


def main() -> None:
    """Starts anvil, deploys, measures and prints the figures against the targets."""
    from contracts.node import start_anvil

    node = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        _, deployed = measure_deploy_gas(w3, sender=w3.eth.accounts[0])
        figures = measure_gas(w3, deployed)
    finally:
        node.stop()
    for name, gas in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  (target <= {target:,}: {'ok' if gas <= target else 'OVER'})"
        print(f"{name:32} {gas:>12,}{verdict}")


if __name__ == "__main__":
    main()
