"""The outbox item kinds: how a kind's items become ONE contract call, and how each item's outcome is
read back from the receipt's decoded logs.

Payloads (JSON, as stored in OutboxItem.payload):
- "consent.grant" / "consent.revoke": {"message": <Grant/Revoke typed-data message>, "signature": "0x.."}
  (a {"typed_data": {...}} envelope instead of "message" is accepted too).
- "directory.action": {"message": <DirectoryAction message>, "signer": "0x..", "signature": "0x.."}.
- "anchor.record": {"recordId": "0x..32 bytes", "patient": "0x..", "digest": "0x..32 bytes"}.
- "anchor.audit_root": {"root": "0x..", "headCount": int, "batchId": "0x.."}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from contracts import client, codec
from contracts.events import DecodedLog, error_name
from contracts.typed_data import consent_id


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
    encoder: Any

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            return type(self).encoder(_message(payload), _signature(payload.get("signature")))
        except (KeyError, TypeError, ValueError) as exc:
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
        patient, grantee, scope_hash, packed, _, _ = self.encode_item(payload)
        terms = codec.unpack_terms(packed)
        return "0x" + consent_id(patient, grantee, scope_hash, terms.purpose).hex(), terms.version


class ConsentGrantKind(_ConsentKind):
    name = "consent.grant"
    function_name = "grantBatch"
    gas_per_item = 45_000  # measured 34,475 per item in a batch of 100 (bench/gas_report.py)
    success_event = "ConsentGranted"
    encoder = staticmethod(codec.signed_grant_args)


class ConsentRevokeKind(_ConsentKind):
    name = "consent.revoke"
    function_name = "revokeBatch"
    gas_per_item = 25_000  # measured 14,397
    success_event = "ConsentRevoked"
    encoder = staticmethod(codec.signed_revoke_args)


class DirectoryActionKind(RelayKind):
    """executeBySig reverts on failure, so one item per transaction; success = mined without revert."""

    name = "directory.action"
    contract_name = "Directory"
    function_name = "executeBySig"
    max_batch = 1

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            action = codec.directory_action_args(_message(payload))
            signer = to_checksum_address(payload["signer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadItem(f"bad directory action payload: {exc}") from exc
        return (action, signer, _signature(payload.get("signature")))

    def call_args(self, encoded: list[Any]) -> list[Any]:
        (only,) = encoded
        return list(only)

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        return [CONFIRMED for _ in payloads]


class AnchorRecordKind(RelayKind):
    """anchorRecords: confirmed iff the chain holds the item's digest after the block (newly anchored, or
    the same digest again: an idempotent no-op with no event); otherwise failed with the skip reason."""

    name = "anchor.record"
    contract_name = "Anchors"
    function_name = "anchorRecords"
    gas_per_item = 32_000  # measured 25,641 per item in a batch of 100

    def encode_item(self, payload: Mapping[str, Any]) -> Any:
        try:
            patient = to_checksum_address(payload["patient"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadItem(f"bad anchor payload: {exc}") from exc
        return (_hex32(payload.get("recordId"), "recordId"), patient, _hex32(payload.get("digest"), "digest"))

    def outcomes(
        self, payloads: list[Mapping[str, Any]], logs: list[DecodedLog], *, block_number: int
    ) -> list[Outcome]:
        anchored = {
            (log.args["recordId"], log.args["digest"]) for log in logs if log.event == "RecordAnchored"
        }
        skips = [log for log in logs if log.event == "AnchorSkipped"]
        results = []
        for payload in payloads:
            record_id, digest = payload["recordId"].lower(), payload["digest"].lower()
            if (record_id, digest) in anchored or self._digest_at(record_id, block_number) == digest:
                results.append(CONFIRMED)
                continue
            skip = next((log for log in skips if log.args["recordId"] == record_id), None)
            if skip is not None:
                skips.remove(skip)
            name = error_name(skip.args["reason"]) if skip else "DigestMismatch"
            results.append(Outcome(False, name, f"skipped by the contract: {name}"))
        return results

    @staticmethod
    def _digest_at(record_id: str, block_number: int) -> str:
        stored = client.call(
            "Anchors", "digestOf", bytes.fromhex(record_id[2:]), block_identifier=block_number
        )
        return "0x" + bytes(stored).hex()


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


KINDS: dict[str, RelayKind] = {
    kind.name: kind
    for kind in (
        ConsentGrantKind(),
        ConsentRevokeKind(),
        DirectoryActionKind(),
        AnchorRecordKind(),
        AnchorAuditRootKind(),
    )
}


def get_kind(name: str) -> RelayKind:
    try:
        return KINDS[name]
    except KeyError:
        raise BadItem(f"unknown outbox kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
