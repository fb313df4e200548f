"""EIP-712 payloads of HealthHash's signed messages, shaped as a wallet's eth_signTypedData_v4 takes them.

Each builder returns {types (with EIP712Domain), domain, primaryType, message}: addresses checksummed,
integers as JSON numbers (decimal strings above 2**53, which ethers and MetaMask accept as well).
Sign in Python with `eth_account.Account.sign_typed_data(key, full_message=payload)`; recover with
`recover_typed_data_signer`.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

CONSENT_DOMAIN_NAME = "HealthHash Consent"
DIRECTORY_DOMAIN_NAME = "HealthHash Directory"
DOMAIN_VERSION = "1"

PURPOSE_TREATMENT = 0
PURPOSE_TRAINING = 1

OP_REGISTER_HOSPITAL = 0
OP_DEACTIVATE_HOSPITAL = 1
OP_REGISTER_DOCTOR = 2
OP_DEACTIVATE_DOCTOR = 3
OP_SET_HOSPITAL_ADMIN = 4

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = "0x" + "00" * 32
_JSON_SAFE_INT = 2**53 - 1  # JavaScript numbers are exact up to here

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
GRANT_TYPE = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "scope", "type": "string"},
    {"name": "purpose", "type": "uint8"},
    {"name": "expiresAt", "type": "uint64"},
    {"name": "version", "type": "uint32"},
    {"name": "deadline", "type": "uint64"},
]
REVOKE_TYPE = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "scope", "type": "string"},
    {"name": "purpose", "type": "uint8"},
    {"name": "version", "type": "uint32"},
    {"name": "deadline", "type": "uint64"},
]
DIRECTORY_ACTION_TYPE = [
    {"name": "op", "type": "uint8"},
    {"name": "hospitalId", "type": "bytes32"},
    {"name": "subject", "type": "address"},
    {"name": "admin", "type": "address"},
    {"name": "nonce", "type": "uint64"},
    {"name": "deadline", "type": "uint64"},
]


def scope_hash(scope: str) -> bytes:
    """keccak256 of a scope string ("chart", "category:<name>", "record:<uuid>"), the contract's key."""
    return keccak(text=scope)


def consent_id(patient: str, grantee: str, scope_hash: bytes, purpose: int) -> bytes:
    """keccak256(abi.encode(patient, grantee, scopeHash, purpose)), the contract's consent key."""
    encoded = abi_encode(["address", "address", "bytes32", "uint8"], [patient, grantee, scope_hash, purpose])
    return keccak(encoded)


def json_int(value: int) -> int | str:
    """An integer as a wallet takes it: a JSON number when exact in JavaScript, else a decimal string."""
    if value < 0:
        raise ValueError("typed-data integers here are unsigned")
    return value if value <= _JSON_SAFE_INT else str(value)


def _domain(name: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": DOMAIN_VERSION,
        "chainId": json_int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def _payload(
    primary_type: str, fields: list[dict[str, str]], domain: dict[str, Any], message: dict[str, Any]
):
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary_type: fields},
        "domain": domain,
        "primaryType": primary_type,
        "message": message,
    }


def grant_typed_data(
    *,
    chain_id: int,
    verifying_contract: str,
    patient: str,
    grantee: str,
    scope: str,
    purpose: int,
    expires_at: int,
    version: int,
    deadline: int,
) -> dict[str, Any]:
    """The `Grant` payload for ConsentRegistry at `verifying_contract` on `chain_id`."""
    message = {
        "patient": to_checksum_address(patient),
        "grantee": to_checksum_address(grantee),
        "scope": scope,
        "purpose": json_int(purpose),
        "expiresAt": json_int(expires_at),
        "version": json_int(version),
        "deadline": json_int(deadline),
    }
    domain = _domain(CONSENT_DOMAIN_NAME, chain_id, verifying_contract)
    return _payload("Grant", GRANT_TYPE, domain, message)


def revoke_typed_data(
    *,
    chain_id: int,
    verifying_contract: str,
    patient: str,
    grantee: str,
    scope: str,
    purpose: int,
    version: int,
    deadline: int,
) -> dict[str, Any]:
    """The `Revoke` payload for ConsentRegistry at `verifying_contract` on `chain_id`."""
    message = {
        "patient": to_checksum_address(patient),
        "grantee": to_checksum_address(grantee),
        "scope": scope,
        "purpose": json_int(purpose),
        "version": json_int(version),
        "deadline": json_int(deadline),
    }
    domain = _domain(CONSENT_DOMAIN_NAME, chain_id, verifying_contract)
    return _payload("Revoke", REVOKE_TYPE, domain, message)


def directory_action_typed_data(
    *,
    chain_id: int,
    verifying_contract: str,
    op: int,
    hospital_id: bytes,
    subject: str = ZERO_ADDRESS,
    admin: str = ZERO_ADDRESS,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The `DirectoryAction` payload for Directory at `verifying_contract`; unused fields stay zero."""
    if len(hospital_id) != 32:
        raise ValueError("hospital_id must be 32 bytes")
    message = {
        "op": json_int(op),
        "hospitalId": "0x" + hospital_id.hex(),
        "subject": to_checksum_address(subject),
        "admin": to_checksum_address(admin),
        "nonce": json_int(nonce),
        "deadline": json_int(deadline),
    }
    domain = _domain(DIRECTORY_DOMAIN_NAME, chain_id, verifying_contract)
    return _payload("DirectoryAction", DIRECTORY_ACTION_TYPE, domain, message)


def hospital_id(slug: str) -> bytes:
    """The app's hospital id: keccak256 of the hospital's slug (the contract treats it opaquely)."""
    return keccak(text=slug)


def recover_typed_data_signer(payload: dict[str, Any], signature: bytes) -> str:
    """The checksummed address that signed `payload` (65-byte r||s||v signature)."""
    return str(Account.recover_message(encode_typed_data(full_message=payload), signature=signature))
