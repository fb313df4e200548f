"""The signed messages of HealthHash, one frozen dataclass each and the one place their fields are listed:
`Grant` and `Revoke` (ConsentRegistry), `DirectoryAction` (Directory), `PlanApproval` and `Update`
(TrainingRegistry; its unsigned `ModelVersion` is here too, for its calldata and hashes).

A message yields the EIP-712 payload a wallet signs (`typed_data(domain)`, shaped for
eth_signTypedData_v4 by the rules of contracts.typed_data) and the calldata its contract takes with the
signature (`calldata(...)`, laid out as contracts.codec describes). `from_message` parses a submitted or
stored message and raises `BadMessage` naming the field. Addresses are checksummed on construction, so
messages with the same terms compare and hash equal. Usage:
`registry.functions.grantBatch([Grant.from_message(m).calldata(sig) for m, sig in items])`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache, cached_property, lru_cache
from typing import Any, ClassVar, NamedTuple, Self, cast

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from contracts import typed_data
from contracts.codec import (
    DirectoryActionTuple,
    SignedConsentTuple,
    compact_signature,
    pack_terms,
    signature_bytes,
)
from healthhash.errors import DomainError
from healthhash.eth_address import checksummed_address

MESSAGE_FIELD = "typed_data.message."  # where a submitted message sits in the API's request body


class Domain(NamedTuple):
    """Where a signature is valid: the chain and the verifying contract."""

    chain_id: int
    verifying_contract: str


class BadMessage(DomainError):
    """A message member is missing or of the wrong type; `field` names it."""

    code = "bad_payload"


def _member(name: str, solidity_type: str, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is member `name` of the EIP-712 struct, of `solidity_type`."""
    return dataclasses.field(default=default, metadata={"eip712": (name, solidity_type)})


@lru_cache(maxsize=65_536)
def _checksummed(value: str) -> str:
    # Cached: the same patients and grantees recur, and a parsed member is checksummed once already.
    return to_checksum_address(value)


def _to_json(solidity_type: str, value: Any) -> Any:
    if solidity_type == "bytes32":
        return "0x" + value.hex()
    if solidity_type.startswith("uint"):
        return typed_data.json_int(value)
    return value  # address (checksummed on construction) or string


def _parse(solidity_type: str, value: Any, name: str, field: str) -> Any:
    if solidity_type == "address":
        return checksummed_address(value, field=field, error=BadMessage)
    if solidity_type.startswith("uint"):
        # Wallets send uints as JSON numbers or decimal/hex strings; bools are not numbers here.
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadMessage(f"{name} must be an integer", field=field)
        try:
            number = int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise BadMessage(f"{name} must be an integer", field=field) from None
        if number < 0:
            raise BadMessage(f"{name} must not be negative", field=field)
        return number
    if solidity_type == "bytes32":
        if isinstance(value, bytes) and len(value) == 32:
            return value
        try:
            raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise BadMessage(f"{name} must be 0x-hex of 32 bytes", field=field)
        return raw
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string", field=field)
    return value


class SignedMessage:
    """What every signed message does; subclasses are frozen keyword-only dataclasses of `_member`s."""

    primary_type: ClassVar[str]
    domain_name: ClassVar[str]

    def __post_init__(self) -> None:
        for attribute, _, solidity_type in self._members():
            value = getattr(self, attribute)
            if solidity_type == "address":
                object.__setattr__(self, attribute, _checksummed(value))
            elif solidity_type == "bytes32" and (not isinstance(value, bytes) or len(value) != 32):
                raise ValueError(f"{attribute} must be 32 bytes")

    @classmethod
    @cache
    def _members(cls) -> tuple[tuple[str, str, str], ...]:
        """(attribute, EIP-712 member name, Solidity type) in struct order."""
        return tuple((f.name, *f.metadata["eip712"]) for f in dataclasses.fields(cast(Any, cls)))

    @classmethod
    def eip712_type(cls) -> list[dict[str, str]]:
        """The struct's member list, as it goes under `types[primaryType]`."""
        return [{"name": name, "type": solidity_type} for _, name, solidity_type in cls._members()]

    def message(self) -> dict[str, Any]:
        """The `message` of the typed data (also what the outbox stores)."""
        return {name: _to_json(kind, getattr(self, attribute)) for attribute, name, kind in self._members()}

    def typed_data(self, domain: Domain | tuple[int, str]) -> dict[str, Any]:
        """The full eth_signTypedData_v4 payload for the contract at `domain`."""
        chain_id, verifying_contract = domain
        return {
            "types": {"EIP712Domain": typed_data.EIP712_DOMAIN_TYPE, self.primary_type: self.eip712_type()},
            "domain": typed_data.eip712_domain(
                self.domain_name, chain_id=chain_id, verifying_contract=verifying_contract
            ),
            "primaryType": self.primary_type,
            "message": self.message(),
        }

    @classmethod
    def from_message(cls, message: Mapping[str, Any], *, field_prefix: str = MESSAGE_FIELD) -> Self:
        """Parse a message (members as a wallet sends them; extra members are ignored)."""
        values = {}
        for attribute, name, solidity_type in cls._members():
            if name not in message:
                raise BadMessage(f"{name} is missing from the signed message", field=field_prefix + name)
            values[attribute] = _parse(solidity_type, message[name], name, field_prefix + name)
        return cast(Any, cls)(**values)


class _ConsentChange(SignedMessage):
    """Grant and Revoke: a change of one consent, keyed on chain by (patient, grantee, scope, purpose)."""

    domain_name = typed_data.CONSENT_DOMAIN_NAME
    patient: str
    grantee: str
    scope: str
    purpose: int
    version: int
    deadline: int

    @cached_property
    def scope_hash(self) -> bytes:
        """keccak256 of the scope text, computed once per message."""
        return typed_data.scope_hash(self.scope)

    @cached_property
    def consent_id(self) -> bytes:
        return typed_data.consent_id(self.patient, self.grantee, self.scope_hash, self.purpose)

    @property
    def consent_key(self) -> str:
        """The consent id as 0x-hex, as the database and the contract's events carry it."""
        return "0x" + self.consent_id.hex()

    def packed_terms(self) -> int:
        raise NotImplementedError

    def calldata(self, signature: bytes | str) -> SignedConsentTuple:
        """The SignedGrant / SignedRevoke tuple for this message and its 65-byte signature."""
        r, vs = compact_signature(signature_bytes(signature))
        return (self.patient, self.grantee, self.scope_hash, self.packed_terms(), r, vs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Grant(_ConsentChange):
    """A patient's signed consent for `grantee` to use `scope` for `purpose` until `expires_at`."""

    primary_type = "Grant"
    patient: str = _member("patient", "address")
    grantee: str = _member("grantee", "address")
    scope: str = _member("scope", "string")
    purpose: int = _member("purpose", "uint8")
    expires_at: int = _member("expiresAt", "uint64")  # unix seconds, 0 = never
    version: int = _member("version", "uint32")
    deadline: int = _member("deadline", "uint64")

    def packed_terms(self) -> int:
        return pack_terms(
            purpose=self.purpose, expires_at=self.expires_at, version=self.version, deadline=self.deadline
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Revoke(_ConsentChange):
    """A patient's signed revocation of one consent (its key's next `version`)."""

    primary_type = "Revoke"
    patient: str = _member("patient", "address")
    grantee: str = _member("grantee", "address")
    scope: str = _member("scope", "string")
    purpose: int = _member("purpose", "uint8")
    version: int = _member("version", "uint32")
    deadline: int = _member("deadline", "uint64")

    def packed_terms(self) -> int:
        return pack_terms(purpose=self.purpose, expires_at=0, version=self.version, deadline=self.deadline)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DirectoryAction(SignedMessage):
    """An admin's signed Directory change (op = typed_data.OP_*); members an op does not use stay zero."""

    primary_type = "DirectoryAction"
    domain_name = typed_data.DIRECTORY_DOMAIN_NAME
    op: int = _member("op", "uint8")
    hospital_id: bytes = _member("hospitalId", "bytes32")
    subject: str = _member("subject", "address", default=typed_data.ZERO_ADDRESS)
    admin: str = _member("admin", "address", default=typed_data.ZERO_ADDRESS)
    nonce: int = _member("nonce", "uint64")
    deadline: int = _member("deadline", "uint64")

    def as_tuple(self) -> DirectoryActionTuple:
        """The Directory `Action` struct."""
        return (self.op, self.hospital_id, self.subject, self.admin, self.nonce, self.deadline)

    def calldata(self, *, signer: str, signature: bytes | str) -> tuple[DirectoryActionTuple, str, bytes]:
        """The arguments of Directory.executeBySig(action, signer, signature)."""
        return (self.as_tuple(), to_checksum_address(signer), signature_bytes(signature))


# ---------------------------------------------------------------- TrainingRegistry (issue 14)

UpdateTuple = tuple[bytes, int, bytes, bytes, bytes, bytes, int, bytes, int, int]
SignedUpdateTuple = tuple[UpdateTuple, bytes, bytes]
PlanApprovalTuple = tuple[bytes, bytes, bytes, int, int]
ModelVersionTuple = tuple[bytes, int, bytes, bytes, bytes, bytes]


def training_update_id(job_id: bytes, round_number: int, hospital_id: bytes) -> bytes:
    """keccak256(abi.encode(jobId, round, hospitalId)): TrainingRegistry's write-once key of an update, and
    the id a model version's `updatesRoot` commits to."""
    return keccak(abi_encode(["bytes32", "uint32", "bytes32"], [job_id, round_number, hospital_id]))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanApproval(SignedMessage):
    """A hospital admin's signed approval of a job's training plan hash (a later one replaces it)."""

    primary_type = "PlanApproval"
    domain_name = typed_data.TRAINING_DOMAIN_NAME
    hospital_id: bytes = _member("hospitalId", "bytes32")
    job_id: bytes = _member("jobId", "bytes32")
    plan_hash: bytes = _member("planHash", "bytes32")
    nonce: int = _member("nonce", "uint64")  # TrainingRegistry.nonces(admin)
    deadline: int = _member("deadline", "uint64")

    def as_tuple(self) -> PlanApprovalTuple:
        """The TrainingRegistry `PlanApproval` struct."""
        return (self.hospital_id, self.job_id, self.plan_hash, self.nonce, self.deadline)

    def calldata(self, *, signer: str, signature: bytes | str) -> tuple[PlanApprovalTuple, str, bytes]:
        """The arguments of TrainingRegistry.approvePlanBySig(approval, signer, signature)."""
        return (self.as_tuple(), to_checksum_address(signer), signature_bytes(signature))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Update(SignedMessage):
    """A hospital's signed local update of one round, signed by the hospital's registered account.

    `cid_digest` is the sha2-256 digest inside the weights' CID multihash (ehr.storage.unixfs.parse_cid(cid)
    .digest): the same for every spelling of the CID. `patient_root` is the Merkle root of the included
    patients' addresses; `weights_hash` the SHA-256 of the weights' bytes.
    """

    primary_type = "Update"
    domain_name = typed_data.TRAINING_DOMAIN_NAME
    job_id: bytes = _member("jobId", "bytes32")
    round: int = _member("round", "uint32")
    hospital_id: bytes = _member("hospitalId", "bytes32")
    plan_hash: bytes = _member("planHash", "bytes32")
    weights_hash: bytes = _member("weightsHash", "bytes32")
    cid_digest: bytes = _member("cidDigest", "bytes32")
    samples: int = _member("samples", "uint64")
    patient_root: bytes = _member("patientRoot", "bytes32")
    pinned_block: int = _member("pinnedBlock", "uint64")
    deadline: int = _member("deadline", "uint64")

    def as_tuple(self) -> UpdateTuple:
        """The TrainingRegistry `Update` struct."""
        return (
            self.job_id,
            self.round,
            self.hospital_id,
            self.plan_hash,
            self.weights_hash,
            self.cid_digest,
            self.samples,
            self.patient_root,
            self.pinned_block,
            self.deadline,
        )

    @property
    def update_id(self) -> bytes:
        """The contract's write-once key: see `training_update_id`."""
        return training_update_id(self.job_id, self.round, self.hospital_id)

    @property
    def update_hash(self) -> bytes:
        """What the contract stores for the update: keccak256(abi.encode(all members but the deadline)), so a
        re-signed copy with another deadline is still the same update."""
        types = [m[2] for m in self._members()][:-1]
        return keccak(abi_encode(types, list(self.as_tuple()[:-1])))

    def calldata(self, signature: bytes | str) -> SignedUpdateTuple:
        """(update, r, vs): a `SignedUpdate` for submitUpdateBatch, or the arguments of submitUpdateBySig."""
        r, vs = compact_signature(signature_bytes(signature))
        return (self.as_tuple(), r, vs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """A published global model (by the operator, unsigned). `updates_root` is the Merkle root of the ids
    (`training_update_id`) of the updates it averages; `metrics_hash` commits to its evaluation."""

    job_id: bytes
    round: int
    weights_hash: bytes
    cid_digest: bytes
    metrics_hash: bytes
    updates_root: bytes

    def as_tuple(self) -> ModelVersionTuple:
        """The TrainingRegistry `ModelVersion` struct: the argument of publishModelVersion."""
        return (
            self.job_id,
            self.round,
            self.weights_hash,
            self.cid_digest,
            self.metrics_hash,
            self.updates_root,
        )

    @property
    def model_version_id(self) -> bytes:
        """keccak256(abi.encode(jobId, round)): the contract's write-once key."""
        return keccak(abi_encode(["bytes32", "uint32"], [self.job_id, self.round]))

    @property
    def model_version_hash(self) -> bytes:
        """What the contract stores: keccak256(abi.encode(every member))."""
        types = ["bytes32", "uint32", "bytes32", "bytes32", "bytes32", "bytes32"]
        return keccak(abi_encode(types, list(self.as_tuple())))
