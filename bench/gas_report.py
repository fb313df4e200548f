"""Measures the gas of HealthHash's contract paths with real receipts on a dev chain and prints the figures.

`measure_gas(w3, contracts)` is what the benchmark calls; `manage.py gas_report` starts its own
anvil, deploys, measures and prints. Needs a node with unlocked funded accounts (anvil).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from contracts.artifacts import load_artifact
from contracts.codec import SignedConsentTuple
from contracts.messages import Domain, Grant, ModelVersion, PlanApproval, Revoke, SignedUpdateTuple, Update
from contracts.typed_data import hospital_id

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
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    assert isinstance(contract, Contract)  # with an address, web3 returns an instance, not the class
    return contract, int(receipt["gasUsed"])


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


def _signed(registry: Contract, patient: LocalAccount, message: Grant | Revoke) -> SignedConsentTuple:
    payload = message.typed_data(Domain(registry.w3.eth.chain_id, registry.address))
    return message.calldata(Account.sign_typed_data(patient.key, full_message=payload).signature)


def _signed_grant(
    registry: Contract, patient: LocalAccount, grantee: str, deadline: int, version: int = 0
) -> SignedConsentTuple:
    grant = Grant(
        patient=patient.address,
        grantee=grantee,
        scope="chart",
        purpose=0,
        expires_at=0,
        version=version,
        deadline=deadline,
    )
    return _signed(registry, patient, grant)


def _signed_revoke(
    registry: Contract, patient: LocalAccount, grantee: str, deadline: int, version: int
) -> SignedConsentTuple:
    revoke = Revoke(
        patient=patient.address, grantee=grantee, scope="chart", purpose=0, version=version, deadline=deadline
    )
    return _signed(registry, patient, revoke)


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


RECORD_BATCH_SIZES = (100, 1000)


def _measure_anchors(anchors: Contract, relayer: str) -> dict[str, int]:
    """One record root per batch whatever its size: gas per record anchored = the root's gas / records."""
    figures: dict[str, int] = {}
    for size in RECORD_BATCH_SIZES:
        root, batch = os.urandom(32), os.urandom(32)
        gas = _send(anchors.functions.anchorRecordRoot(root, size, batch), relayer)
        suffix = "" if size == RECORD_BATCH_SIZES[0] else f"_{size}"
        figures[f"anchorRecordRoot{suffix}"] = gas
        figures[f"anchorRecordRoot_per_record_{size}"] = gas // size
        if not suffix:
            figures["anchorRecordRoot_resend"] = _send(
                anchors.functions.anchorRecordRoot(root, size, batch), relayer
            )
    figures["anchorAuditRoot"] = _send(
        anchors.functions.anchorAuditRoot(os.urandom(32), 250, os.urandom(32)), relayer
    )
    return figures


def measure_gas(w3: Web3, contracts: Mapping[str, Contract]) -> dict[str, int]:
    """Gas figures (receipts' gasUsed) for deploys, signed single/batched grants and revokes, direct calls
    and anchors (record roots per record at batches of 100 and 1000, audit roots). Uses `contracts` when their
    admins are unlocked on the node, else a fresh deployment."""
    accounts = list(w3.eth.accounts)
    unlocked = set(accounts)
    relayer, patient = accounts[0], accounts[1]
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
    figures.update(measure_training_gas(w3, directory, relayer=relayer))
    return figures


TARGETS = {
    "grantBatch_per_item": 36_000,
    "revokeBatch_per_item": 16_000,
    "grantBySig_single": 70_000,
    "anchorRecordRoot_per_record_100": 1_000,
}


# ---------------------------------------------------------------- training (issue 14): TrainingRegistry

TRAINING_BATCH_SIZE = 10  # one round of ten hospitals, one update each, in one submitUpdateBatch
# A far deadline with no zero byte: apart from the signatures, the measured calldata has no zero bytes, so
# the figures move only with the signatures' random bytes (a zero byte of calldata costs 12 gas less).
_TRAINING_DEADLINE = 0x7F7F7F7F7F7F7F7F


def _nonzero_bytes32() -> bytes:
    return bytes(b or 1 for b in os.urandom(32))


def _nonzero_key() -> LocalAccount:
    while b"\0" in bytes.fromhex((key := Account.create()).address[2:]):
        pass
    return key


def _nonzero_hospital_id() -> bytes:
    while b"\0" in (hid := hospital_id("gas-training-" + os.urandom(8).hex())):
        pass
    return hid


def _training_hospitals(directory: Contract, count: int) -> list[tuple[bytes, LocalAccount, LocalAccount]]:
    """Registers `count` fresh hospitals; returns (hospital id, account key, admin key) each."""
    consortium_admin = directory.functions.consortiumAdmin().call()
    hospitals = []
    for _ in range(count):
        hid, account, admin = _nonzero_hospital_id(), _nonzero_key(), _nonzero_key()
        _send(directory.functions.execute((0, hid, account.address, admin.address, 0, 0)), consortium_admin)
        hospitals.append((hid, account, admin))
    return hospitals


def _sign(training: Contract, key: LocalAccount, message: PlanApproval | Update) -> bytes:
    payload = message.typed_data(Domain(training.w3.eth.chain_id, training.address))
    return bytes(Account.sign_typed_data(key.key, full_message=payload).signature)


def _approve_plan(training: Contract, hid: bytes, admin: LocalAccount, job_id: bytes, plan: bytes) -> Any:
    nonce = training.functions.nonces(admin.address).call()
    approval = PlanApproval(
        hospital_id=hid, job_id=job_id, plan_hash=plan, nonce=nonce, deadline=_TRAINING_DEADLINE
    )
    signature = _sign(training, admin, approval)
    return training.functions.approvePlanBySig(*approval.calldata(signer=admin.address, signature=signature))


def _signed_update(
    training: Contract, hid: bytes, account: LocalAccount, job_id: bytes, round_number: int, plan: bytes
) -> SignedUpdateTuple:
    update = Update(
        job_id=job_id,
        round=round_number,
        hospital_id=hid,
        plan_hash=plan,
        weights_hash=_nonzero_bytes32(),
        cid_digest=_nonzero_bytes32(),
        samples=180,
        patient_root=_nonzero_bytes32(),
        pinned_block=1_000_000,
        deadline=_TRAINING_DEADLINE,
    )
    return update.calldata(_sign(training, account, update))


def measure_training_gas(w3: Web3, directory: Contract, *, relayer: str) -> dict[str, int]:
    """Deploys a TrainingRegistry on `directory` (consortium admin unlocked), registers hospitals, approves a
    plan for each, and measures single and batched updates (one per hospital of a round) and model versions.
    `gas_update` is what one update of a ten-hospital round costs, its share of the transaction base included;
    `gas_model_version` is one publishModelVersion transaction."""
    training, deploy_gas = _deploy(w3, "TrainingRegistry", directory.address, relayer, sender=relayer)
    hospitals = _training_hospitals(directory, TRAINING_BATCH_SIZE)
    job_id, plan, changed_plan = _nonzero_bytes32(), _nonzero_bytes32(), _nonzero_bytes32()
    figures = {"deploy_TrainingRegistry": deploy_gas}
    hid, account, admin = hospitals[0]
    figures["approvePlanBySig"] = _send(_approve_plan(training, hid, admin, job_id, changed_plan), relayer)
    figures["approvePlanBySig_change"] = _send(_approve_plan(training, hid, admin, job_id, plan), relayer)
    for other_hid, _, other_admin in hospitals[1:]:
        _send(_approve_plan(training, other_hid, other_admin, job_id, plan), relayer)

    single = _signed_update(training, hid, account, job_id, 0, plan)
    figures["submitUpdateBySig_single"] = _send(training.functions.submitUpdateBySig(*single), relayer)
    figures["submitUpdateBySig_resend"] = _send(training.functions.submitUpdateBySig(*single), relayer)
    one = [_signed_update(training, hid, account, job_id, 1, plan)]
    figures["submitUpdateBatch_1"] = _send(training.functions.submitUpdateBatch(one), relayer)
    batch = [_signed_update(training, h, a, job_id, 2, plan) for h, a, _ in hospitals]
    total = _send(training.functions.submitUpdateBatch(batch), relayer)
    figures[f"submitUpdateBatch_{TRAINING_BATCH_SIZE}"] = total
    figures["submitUpdateBatch_per_item"] = (total - TX_BASE_GAS) // TRAINING_BATCH_SIZE
    figures["submitUpdateBatch_marginal_item"] = (total - figures["submitUpdateBatch_1"]) // (
        TRAINING_BATCH_SIZE - 1
    )
    figures["gas_update"] = -(-total // TRAINING_BATCH_SIZE)

    version = ModelVersion(
        job_id=job_id,
        round=2,
        weights_hash=_nonzero_bytes32(),
        cid_digest=_nonzero_bytes32(),
        metrics_hash=_nonzero_bytes32(),
        updates_root=_nonzero_bytes32(),
    )
    publish = training.functions.publishModelVersion(version.as_tuple())
    figures["publishModelVersion"] = _send(publish, relayer)
    figures["publishModelVersion_resend"] = _send(publish, relayer)
    figures["gas_model_version"] = figures["publishModelVersion"]
    return figures


TARGETS.update({"gas_update": 60_000, "gas_model_version": 60_000})


def print_gas_report(*, say: Callable[[str], Any] = print) -> dict[str, int]:
    """Starts anvil, deploys, measures and prints the figures against the targets (`manage.py gas_report`)."""
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
        say(f"{name:32} {gas:>12,}{verdict}")
    return figures
