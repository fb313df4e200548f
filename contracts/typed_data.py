"""EIP-712 rules of HealthHash's signed messages, shaped as a wallet's eth_signTypedData_v4 takes them.

A payload is {types (with EIP712Domain), domain, primaryType, message}: addresses checksummed, integers
as JSON numbers (decimal strings above 2**53, which ethers and MetaMask accept as well). The messages
themselves (Grant, Revoke, DirectoryAction) are the dataclasses of contracts.messages; this module holds
the domains, the integer rule and the chain's hashes. Sign in Python with
`eth_account.Account.sign_typed_data(key, full_message=payload)`; recover with `recover_typed_data_signer`.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

CONSENT_DOMAIN_NAME = "HealthHash Consent"
DIRECTORY_DOMAIN_NAME = "HealthHash Directory"
TRAINING_DOMAIN_NAME = "HealthHash Training"
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


def eip712_domain(name: str, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The `domain` member of a payload: `name`, version "1", the chain and the verifying contract."""
    return {
        "name": name,
        "version": DOMAIN_VERSION,
        "chainId": json_int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def hospital_id(slug: str) -> bytes:
    """The app's hospital id: keccak256 of the hospital's slug (the contract treats it opaquely)."""
    return keccak(text=slug)


def recover_typed_data_signer(payload: dict[str, Any], signature: bytes) -> str:
    """The checksummed address that signed `payload` (65-byte r||s||v signature)."""
    return str(Account.recover_message(encode_typed_data(full_message=payload), signature=signature))
