"""The outbox item kinds: what a service queues (a typed item per kind), how a kind's items become ONE
contract call, and how each item's outcome is read back from the receipt's decoded logs.

Each kind is a RelayKind (the relayer's side) next to its item dataclass (the services' side), which
knows its kind name, its payload and its idempotency key. Payloads (JSON, as stored in OutboxItem.payload;
rows already stored keep relaying, so their shapes do not change):
- "consent.grant" / "consent.revoke": {"message": <Grant/Revoke typed-data message>, "signature": "0x.."}
  (a {"typed_data": {...}} envelope instead of "message" is accepted too).
- "directory.action": {"message": <DirectoryAction message>, "signer": "0x..", "signature": "0x.."}.
- "anchor.record_root": {"root": "0x..", "recordCount": int, "batchId": "0x.."} (it replaced the per-record
  "anchor.record" kind; ehr's migration 0003 failed the rows of that kind still waiting).
- "anchor.audit_root": {"root": "0x..", "headCount": int, "batchId": "0x.."}.
To add a kind: a RelayKind subclass and a RelayItem dataclass naming it, and the kind in KINDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_utils import to_checksum_address

from contracts.events import DecodedLog, error_name
from contracts.messages import (
    BadMessage,
    DirectoryAction,
    Grant,
    ModelVersion,
    PlanApproval,
    Revoke,
    SignedMessage,
)
from contracts.messages import Update as TrainingUpdate


class BadItem(ValueError):
    """A payload that cannot be encoded; the item fails with error_code "bad_payload"."""


@dataclass(frozen=True)
class Outcome:
    confirmed: bool
    error_code: str = ""
    error_detail: str = ""


CONFIRMED = Outcome(True)


def _hex32(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise BadItem(f"{name} must be 0x-hex of 32 bytes")
    return bytes.fromhex(value[2:])


def _signature(value: Any) -> bytes:
    if not isinstance(value, str) or len(value.removeprefix("0x")) != 130:
        raise BadItem("signature must be 65 bytes of 0x-hex")
    return bytes.fromhex(value.removeprefix("0x"))


def _message(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    message = payload.get("message") or (payload.get("typed_data") or {}).get("message")
    if not isinstance(message, Mapping):
        raise BadItem("payload needs the signed typed-data message")
    return message


class RelayItem:
    """One chain write to queue (`contracts.outbox.enqueue`): its kind, stored payload and idempotency key.

    Subclasses are frozen dataclasses; `kind` names their RelayKind.
    """

    kind: ClassVar[str]

    @property
    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def idempotency_key(self) -> str:
        raise NotImplementedError


def _hex_signature(signature: bytes | str) -> str:
    text = signature if isinstance(signature, str) else signature.hex()
    return "0x" + text.removeprefix("0x")


class RelayKind:
    """One kind of chain write. `max_batch` items at most go into one call (1 = one call per item)."""

    name: str
    contract_name: str
    function_name: str
    max_batch: int = 500
    # An upper bound of the gas one item costs, for kinds whose batch call never reverts on a bad item:
    # the relayer then sizes the transaction from it after one eth_call dry run, instead of
    # eth_estimateGas (a binary search that re-executes the batch ~15 times: 97 ms for 100 grants).
    gas_per_item: int | None = None

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        """The item's calldata argument; raises BadItem for a payload that can never be sent."""
        raise NotImplementedError

    def call_args(self, encoded: list[Any]) -> list[Any]:
        """The contract function's arguments for a batch of encoded items."""
        return [encoded]

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        """Each item's outcome (in batch order) from the decoded logs of a successful receipt."""
        raise NotImplementedError


class _ConsentKind(RelayKind):
    contract_name = "ConsentRegistry"
    success_event: str
    message_type: type[Grant] | type[Revoke]

    def _parse(self, payload: Mapping[str, Any]) -> Grant | Revoke:
        try:
            return self.message_type.from_message(_message(payload), field_prefix="message.")
        except BadMessage as exc:
            raise BadItem(f"bad consent payload: {exc.field}: {exc.detail}") from exc

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        message = self._parse(payload)
        try:
            return message.calldata(_signature(payload.get("signature")))
        except (TypeError, ValueError) as exc:
            raise BadItem(f"bad consent payload: {exc}") from exc

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        # The contract emits exactly one event (success or ConsentSkipped) per item, in item order;
        # matching on (consentId, version) and consuming each event once also handles duplicates.
        remaining = [log for log in logs if log.event in (self.success_event, "ConsentSkipped")]
        results = []
        for payload in payloads:
            key = self._event_key(payload)
            match = next(
                (log for log in remaining if (log.args["consentId"], log.args["version"]) == key), None
            )
            if match is None:
                results.append(Outcome(False, "no_event", f"no event for consent {key[0]} version {key[1]}"))
                continue
            remaining.remove(match)
            if match.event == self.success_event:
                results.append(CONFIRMED)
            else:
                name = error_name(match.args["reason"])
                results.append(Outcome(False, name, f"skipped by the contract: {name}"))
        return results

    def _event_key(self, payload: Mapping[str, Any]) -> tuple[str, int]:
        """(consentId hex, version) as the contract's events carry them."""
        message = self._parse(payload)
        return message.consent_key, message.version


class ConsentGrantKind(_ConsentKind):
    name = "consent.grant"
    function_name = "grantBatch"
    gas_per_item = 45_000  # measured 34,475 per item in a batch of 100 (bench/gas_report.py)
    success_event = "ConsentGranted"
    message_type = Grant


def _consent_payload(message: SignedMessage, signature: bytes | str) -> dict[str, Any]:
    return {"message": message.message(), "signature": _hex_signature(signature)}


@dataclass(frozen=True)
class ConsentGrantItem(RelayItem):
    """A patient's signed Grant, relayed by grantBatch; one item per (consent key, version)."""

    kind = ConsentGrantKind.name
    grant: Grant
    signature: bytes | str  # 65 bytes, or their 0x-hex

    @property
    def payload(self) -> dict[str, Any]:
        return _consent_payload(self.grant, self.signature)

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{self.grant.consent_key}:{self.grant.version}"


class ConsentRevokeKind(_ConsentKind):
    name = "consent.revoke"
    function_name = "revokeBatch"
    gas_per_item = 25_000  # measured 14,397
    success_event = "ConsentRevoked"
    message_type = Revoke


@dataclass(frozen=True)
class ConsentRevokeItem(RelayItem):
    """A patient's signed Revoke, relayed by revokeBatch; one item per (consent key, version)."""

    kind = ConsentRevokeKind.name
    revoke: Revoke
    signature: bytes | str

    @property
    def payload(self) -> dict[str, Any]:
        return _consent_payload(self.revoke, self.signature)

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{self.revoke.consent_key}:{self.revoke.version}"


class _SignedActionKind(RelayKind):
    """A call that takes one admin-signed message (with its signer) and reverts on failure: one item per
    transaction; success = mined without revert AND one of `success_events` from the contract (every
    successful call emits one, so a receipt without it did not run our contract)."""

    max_batch = 1
    message_type: type[DirectoryAction] | type[PlanApproval]
    label: str
    success_events: tuple[str, ...]

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            message = self.message_type.from_message(_message(payload), field_prefix="message.")
            return message.calldata(signer=payload["signer"], signature=_signature(payload.get("signature")))
        except BadMessage as exc:
            raise BadItem(f"bad {self.label} payload: {exc.field}: {exc.detail}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise BadItem(f"bad {self.label} payload: {exc}") from exc

    def call_args(self, encoded: list[Any]) -> list[Any]:
        (only,) = encoded
        return list(only)

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        if any(log.event in self.success_events for log in logs):
            return [CONFIRMED for _ in payloads]
        expected = " or ".join(self.success_events)
        return [Outcome(False, "no_event", f"mined, but without the {expected} event") for _ in payloads]


class DirectoryActionKind(_SignedActionKind):
    name = "directory.action"
    contract_name = "Directory"
    function_name = "executeBySig"
    message_type = DirectoryAction
    label = "directory action"
    success_events = (
        "HospitalRegistered",
        "HospitalDeactivated",
        "DoctorRegistered",
        "DoctorDeactivated",
        "HospitalAdminChanged",
    )


@dataclass(frozen=True)
class DirectoryActionItem(RelayItem):
    """An admin's signed DirectoryAction, relayed by executeBySig; one item per (signer, nonce)."""

    kind = DirectoryActionKind.name
    action: DirectoryAction
    signer: str
    signature: bytes | str

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "message": self.action.message(),
            "signer": to_checksum_address(self.signer),
            "signature": _hex_signature(self.signature),
        }

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{to_checksum_address(self.signer)}:{self.action.nonce}"


class AnchorRecordRootKind(RelayKind):
    """anchorRecordRoot: one per transaction; the same root again is a silent no-op (= confirmed), another
    root for the same batch id reverts (RecordRootMismatch) and fails the item."""

    name = "anchor.record_root"
    contract_name = "Anchors"
    function_name = "anchorRecordRoot"
    max_batch = 1

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            record_count = int(payload["recordCount"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadItem(f"bad record root payload: {exc}") from exc
        if not 0 < record_count < 2**32:
            raise BadItem("recordCount must be between 1 and 2**32 - 1")
        return (_hex32(payload.get("root"), "root"), record_count, _hex32(payload.get("batchId"), "batchId"))

    def call_args(self, encoded: list[Any]) -> list[Any]:
        (only,) = encoded
        return list(only)

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        return [CONFIRMED for _ in payloads]


@dataclass(frozen=True)
class RecordRootItem(RelayItem):
    """The Merkle root of a batch of records (ehr.anchoring), anchored by anchorRecordRoot."""

    kind = AnchorRecordRootKind.name
    root: str  # 0x-hex, 32 bytes
    record_count: int
    batch_id: str  # 0x-hex, 32 bytes

    @property
    def payload(self) -> dict[str, Any]:
        return {"root": self.root, "recordCount": self.record_count, "batchId": self.batch_id}

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{self.batch_id}"


class AnchorAuditRootKind(RelayKind):
    """anchorAuditRoot: one per transaction; the same root again is a silent no-op (= confirmed)."""

    name = "anchor.audit_root"
    contract_name = "Anchors"
    function_name = "anchorAuditRoot"
    max_batch = 1

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            head_count = int(payload["headCount"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadItem(f"bad audit root payload: {exc}") from exc
        return (_hex32(payload.get("root"), "root"), head_count, _hex32(payload.get("batchId"), "batchId"))

    def call_args(self, encoded: list[Any]) -> list[Any]:
        (only,) = encoded
        return list(only)

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        return [CONFIRMED for _ in payloads]


@dataclass(frozen=True)
class AuditRootItem(RelayItem):
    """The Merkle root of a batch of access-log heads, anchored by anchorAuditRoot."""

    kind = AnchorAuditRootKind.name
    root: str  # 0x-hex, 32 bytes
    head_count: int
    batch_id: str  # 0x-hex, 32 bytes

    @property
    def payload(self) -> dict[str, Any]:
        return {"root": self.root, "headCount": self.head_count, "batchId": self.batch_id}

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{self.batch_id}"


KINDS: dict[str, RelayKind] = {
    kind.name: kind
    for kind in (
        ConsentGrantKind(),
        ConsentRevokeKind(),
        DirectoryActionKind(),
        AnchorRecordRootKind(),
        AnchorAuditRootKind(),
    )
}


def get_kind(name: str) -> RelayKind:
    try:
        return KINDS[name]
    except KeyError:
        raise BadItem(f"unknown outbox kind {name!r}; known: {', '.join(sorted(KINDS))}") from None


# ---------------------------------------------------------------- training (issue 14): TrainingRegistry
# Payloads:
# - "training.plan_approval": {"message": <PlanApproval message>, "signer": "0x..", "signature": "0x.."}.
# - "training.update": {"message": <Update message>, "signature": "0x.."} (the hospital account's signature).
# - "training.model_version": {"jobId", "round", "weightsHash", "cidDigest", "metricsHash", "updatesRoot"}
#   (0x-hex bytes32 members, round an int), published by the relayer itself (it holds OPERATOR_ROLE).


class TrainingPlanApprovalKind(_SignedActionKind):
    name = "training.plan_approval"
    contract_name = "TrainingRegistry"
    function_name = "approvePlanBySig"
    message_type = PlanApproval
    label = "plan approval"
    success_events = ("PlanApproved",)


@dataclass(frozen=True)
class TrainingPlanApprovalItem(RelayItem):
    """A hospital admin's signed PlanApproval; one item per (signer, nonce)."""

    kind = TrainingPlanApprovalKind.name
    approval: PlanApproval
    signer: str
    signature: bytes | str

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "message": self.approval.message(),
            "signer": to_checksum_address(self.signer),
            "signature": _hex_signature(self.signature),
        }

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{to_checksum_address(self.signer)}:{self.approval.nonce}"


def _parse_update(payload: Mapping[str, Any]) -> TrainingUpdate:
    try:
        return TrainingUpdate.from_message(_message(payload), field_prefix="message.")
    except BadMessage as exc:
        raise BadItem(f"bad training update payload: {exc.field}: {exc.detail}") from exc


class TrainingUpdateKind(RelayKind):
    """submitUpdateBatch: a bad item is skipped with UpdateSkipped(updateId, updateHash, reason), never
    reverting the batch; an item without such an event is on chain (stored now, or an identical re-send)."""

    name = "training.update"
    contract_name = "TrainingRegistry"
    function_name = "submitUpdateBatch"
    max_batch = 50  # one update per hospital per round: a batch is a round's worth, or a few
    # Measured (bench/gas_report.py): 48,642 for one item alone less the transaction base, 45,446 per item of
    # a batch of 10 hospitals (each hospital's Directory entry cold: the worst case).
    gas_per_item = 50_000

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        update = _parse_update(payload)
        try:
            return update.calldata(_signature(payload.get("signature")))
        except (TypeError, ValueError) as exc:
            raise BadItem(f"bad training update payload: {exc}") from exc

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        # Matching on (updateId, updateHash) and consuming each skip once also handles duplicates in a batch.
        skipped = [log for log in logs if log.event == "UpdateSkipped"]
        results = []
        for payload in payloads:
            update = _parse_update(payload)
            key = ("0x" + update.update_id.hex(), "0x" + update.update_hash.hex())
            match = next(
                (log for log in skipped if (log.args["updateId"], log.args["updateHash"]) == key), None
            )
            if match is None:
                results.append(CONFIRMED)
                continue
            skipped.remove(match)
            name = error_name(match.args["reason"])
            results.append(Outcome(False, name, f"skipped by the contract: {name}"))
        return results


@dataclass(frozen=True)
class TrainingUpdateItem(RelayItem):
    """A hospital's signed Update, relayed by submitUpdateBatch; one item per signed message."""

    kind = TrainingUpdateKind.name
    update: TrainingUpdate
    signature: bytes | str

    @property
    def payload(self) -> dict[str, Any]:
        return {"message": self.update.message(), "signature": _hex_signature(self.signature)}

    @property
    def idempotency_key(self) -> str:
        update = self.update
        return f"{self.kind}:0x{update.update_id.hex()}:0x{update.update_hash.hex()}:{update.deadline}"


_MODEL_VERSION_HASHES = ("jobId", "weightsHash", "cidDigest", "metricsHash", "updatesRoot")


def _model_version(payload: Mapping[str, Any]) -> ModelVersion:
    try:
        round_number = int(payload["round"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadItem(f"bad model version payload: {exc}") from exc
    if not 0 <= round_number < 2**32:
        raise BadItem("round must fit uint32")
    job_id, weights_hash, cid_digest, metrics_hash, updates_root = (
        _hex32(payload.get(name), name) for name in _MODEL_VERSION_HASHES
    )
    return ModelVersion(
        job_id=job_id,
        round=round_number,
        weights_hash=weights_hash,
        cid_digest=cid_digest,
        metrics_hash=metrics_hash,
        updates_root=updates_root,
    )


class TrainingModelVersionKind(RelayKind):
    """publishModelVersion: one per transaction; the same version again is a silent no-op (= confirmed),
    another for a published (job, round) reverts (ModelVersionConflict) and fails the item."""

    name = "training.model_version"
    contract_name = "TrainingRegistry"
    function_name = "publishModelVersion"
    max_batch = 1

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        return _model_version(payload).as_tuple()

    def call_args(self, encoded: list[Any]) -> list[Any]:
        (only,) = encoded
        return [only]

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        return [CONFIRMED for _ in payloads]


@dataclass(frozen=True)
class TrainingModelVersionItem(RelayItem):
    """A global model version, published by publishModelVersion; one item per (job, round, content)."""

    kind = TrainingModelVersionKind.name
    version: ModelVersion

    @property
    def payload(self) -> dict[str, Any]:
        v = self.version
        return {
            "jobId": "0x" + v.job_id.hex(),
            "round": v.round,
            "weightsHash": "0x" + v.weights_hash.hex(),
            "cidDigest": "0x" + v.cid_digest.hex(),
            "metricsHash": "0x" + v.metrics_hash.hex(),
            "updatesRoot": "0x" + v.updates_root.hex(),
        }

    @property
    def idempotency_key(self) -> str:
        v = self.version
        return f"{self.kind}:0x{v.model_version_id.hex()}:0x{v.model_version_hash.hex()}"


KINDS.update(
    {
        kind.name: kind
        for kind in (TrainingPlanApprovalKind(), TrainingUpdateKind(), TrainingModelVersionKind())
    }
)
