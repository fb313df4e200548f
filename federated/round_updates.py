"""The checks a hospital's submitted update passes before it counts (the coordinator's side of a round).

In order: the EIP-712 `Update` parses; its signature recovers the hospital's registered account (else
403 `bad_signature`); then, against the job, the round and the hospital's row, its terms (pinned block,
plan hash and approval, deadline, sample count); its patients (a subset of what a release to that hospital
at the pinned block holds, their Merkle root the signed one); and last its weights, fetched by CID from the
content store (SHA-256 = the signed `weightsHash`, the CID's digest = the signed `cidDigest`, a safetensors
file that fits the global model it trained from, finite). Every failure is a `DomainError` with a stable
code; federated/rounds.py records it (on the hospital's row, or as an `UpdateRejection` when the sender
cannot be attributed) and raises it to the worker. Fetching weights is I/O and happens outside any
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from torch import Tensor

from access.models import Hospital
from contracts import client
from contracts.messages import BadMessage, Domain, Update
from contracts.typed_data import recover_typed_data_signer
from ehr import store
from ehr.storage.unixfs import parse_cid
from federated import patient_set, release, weights_format
from federated.models import JobHospital, TrainingJob, TrainingRound
from federated.updates import InvalidUpdate, ModelUpdate, validate_update
from healthhash.errors import DomainError, Forbidden

# An update whose signature lapses sooner than this could not be relayed before the contract refuses it.
MIN_DEADLINE_MARGIN_S = 60
_MAX_PATIENTS = 1_000_000


class BadSignature(Forbidden):
    code = "bad_signature"


class UpdateRefused(DomainError):
    """A 400 whose `code` says which check failed (plan_mismatch, patient_root_mismatch, ...)."""


@dataclass(frozen=True)
class Submission:
    """What a hospital worker POSTs to /api/training/worker/updates (see DESIGN14 step 5)."""

    message: Mapping[str, Any]
    signature: str
    cid: str
    patients: Sequence[str]
    metrics: Mapping[str, Any]
    epsilon: float | None
    timings: Mapping[str, Any]


@dataclass(frozen=True)
class FetchedWeights:
    data: bytes
    weights: dict[str, Tensor]


def parse_update(message: Mapping[str, Any]) -> Update:
    if not isinstance(message, Mapping):
        raise BadMessage("update must be the signed Update message", field="update")
    return Update.from_message(message, field_prefix="update.")


def training_domain() -> Domain:
    return Domain(client.chain_id(), client.deployment_address("TrainingRegistry"))


def signer_of(update: Update, signature: str) -> str:
    """The checksummed account that signed `update` (for this chain's TrainingRegistry)."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 65:
        raise BadSignature("signature must be 65 bytes of 0x-hex", field="signature")
    try:
        return recover_typed_data_signer(update.typed_data(training_domain()), raw)
    except Exception as exc:  # eth_account raises several types for a malformed signature
        raise BadSignature("the signature does not recover", field="signature") from exc


def check_signer(*, signer: str, hospital: Hospital) -> None:
    if to_checksum_address(signer) != to_checksum_address(hospital.account_address):
        raise BadSignature(f"the request is not signed by {hospital.slug}'s registered account")


def check_terms(
    update: Update, *, job: TrainingJob, training_round: TrainingRound, participation: JobHospital
) -> None:
    """Pinned block, plan hash (the job's, approved by this hospital on chain), deadline, sample count."""
    if update.pinned_block != training_round.pinned_block:
        raise UpdateRefused(
            f"pinnedBlock {update.pinned_block} is not the round's {training_round.pinned_block}.",
            field="update.pinnedBlock",
            code="wrong_pinned_block",
        )
    if "0x" + update.plan_hash.hex() != job.plan_hash:
        raise UpdateRefused(
            "planHash is not the job's plan hash.", field="update.planHash", code="plan_mismatch"
        )
    approved = (
        participation.approval == JobHospital.Approval.APPROVED
        and participation.approval_plan_hash == job.plan_hash
    )
    if not approved:
        raise UpdateRefused(
            "This hospital's approval of the plan is not on chain.",
            field="update.planHash",
            code="plan_not_approved",
        )
    if update.deadline < time.time() + MIN_DEADLINE_MARGIN_S:
        raise UpdateRefused(
            "The signature's deadline is too close to be relayed; sign with the round's deadline.",
            field="update.deadline",
            code="deadline_expired",
        )
    if update.samples <= 0:
        raise UpdateRefused("samples must be > 0.", field="update.samples", code="invalid_update")


def check_patients(
    update: Update, patients: Sequence[str], *, hospital: Hospital, pinned_block: int
) -> list[str]:
    """The update's patients (checksummed, sorted): one row each, all in the hospital's release at the
    pinned block, their Merkle root the signed `patientRoot`."""
    if not isinstance(patients, list | tuple) or not patients or len(patients) > _MAX_PATIENTS:
        raise UpdateRefused("patients must be a non-empty list of addresses.", field="patients")
    try:
        addresses: list[str] = sorted({str(to_checksum_address(address)) for address in patients})
    except (TypeError, ValueError) as exc:
        raise UpdateRefused("patients must be Ethereum addresses.", field="patients") from exc
    if len(addresses) != len(patients) or len(addresses) != update.samples:
        raise UpdateRefused(
            f"samples {update.samples} is not the number of distinct patients ({len(addresses)} of "
            f"{len(patients)} listed): one training row per patient.",
            field="update.samples",
            code="sample_count_mismatch",
        )
    released = release.released_patients(hospital=hospital, pinned_block=pinned_block)
    outside = [address for address in addresses if address not in released]
    if outside:
        raise UpdateRefused(
            f"{len(outside)} of the update's patients are not in this hospital's release at block "
            f"{pinned_block}.",
            field="patients",
            code="patients_not_released",
        )
    if patient_set.root_of(addresses) != update.patient_root:
        raise UpdateRefused(
            "patientRoot is not the Merkle root of the listed patients.",
            field="update.patientRoot",
            code="patient_root_mismatch",
        )
    return addresses


def fetch_weights(update: Update, cid: str) -> FetchedWeights:
    """The weights at `cid`, checked against the signed digests. StoreUnavailable (503) propagates: the
    store being down is not the hospital's fault, and the worker retries."""
    try:
        cid_digest = parse_cid(cid).digest if isinstance(cid, str) else None
    except ValueError:
        cid_digest = None
    if cid_digest is None:
        raise UpdateRefused("cid is not a valid CID.", field="cid", code="bad_cid")
    if cid_digest != update.cid_digest:
        raise UpdateRefused(
            "cidDigest is not the digest inside the CID.", field="update.cidDigest", code="cid_mismatch"
        )
    try:
        data = store.cat(cid)
    except (store.StoredBytesMissing, store.StoredBytesBroken) as exc:
        raise UpdateRefused(
            f"The weights at {cid} cannot be read: {exc.detail}", field="cid", code="weights_missing"
        ) from exc
    if weights_format.sha256_hex(data) != "0x" + update.weights_hash.hex():
        raise UpdateRefused(
            "The SHA-256 of the stored weights is not weightsHash.",
            field="update.weightsHash",
            code="weights_hash_mismatch",
        )
    try:
        weights = weights_format.load(data)
    except weights_format.BadWeights as exc:
        raise UpdateRefused(str(exc), field="cid", code="invalid_update") from exc
    return FetchedWeights(data=data, weights=weights)


def check_weights(
    weights: Mapping[str, Tensor], *, hospital_id: str, samples: int, base: Mapping[str, Tensor]
) -> None:
    """Names, shapes, dtypes and finite values against the global model the round trained from."""
    try:
        validate_update(
            ModelUpdate(hospital_id=hospital_id, weights=weights, sample_count=samples), global_weights=base
        )
    except InvalidUpdate as exc:
        raise UpdateRefused(exc.detail, field=exc.field, code="invalid_update") from exc
