"""EIP-712 consent payloads: build the exact typed data a wallet signs, and check a signed one.

A submitted payload is never trusted as sent: its message fields are parsed, the canonical payload is
rebuilt from them with *our* chain id and contract address, and the signature is recovered over that.
So a payload signed for another chain, another contract or with altered types fails here, off chain,
before anything is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_address, to_checksum_address

from contracts import client
from contracts.typed_data import grant_typed_data, revoke_typed_data
from healthhash.errors import DomainError


class BadPayload(DomainError):
    code = "bad_payload"


class BadSignature(DomainError):
    code = "bad_signature"


@dataclass(frozen=True)
class GrantTerms:
    patient: str
    grantee: str
    scope: str
    purpose: int
    expires_at: int  # unix seconds, 0 = never
    version: int
    deadline: int


@dataclass(frozen=True)
class RevokeTerms:
    patient: str
    grantee: str
    scope: str
    purpose: int
    version: int
    deadline: int


def registry_domain() -> tuple[int, str]:
    """(chain id, ConsentRegistry address) the payloads are bound to."""
    # The address comes from the deployments table: building a web3 Contract here cost ~1.5 ms a call.
    return client.chain_id(), client.deployment_address("ConsentRegistry")


def new_deadline() -> int:
    return int(time.time()) + settings.CONSENT_SIGNATURE_TTL_S


def grant_payload(terms: GrantTerms, *, domain: tuple[int, str] | None = None) -> dict[str, Any]:
    chain_id, contract = domain or registry_domain()
    return grant_typed_data(
        chain_id=chain_id,
        verifying_contract=contract,
        patient=terms.patient,
        grantee=terms.grantee,
        scope=terms.scope,
        purpose=terms.purpose,
        expires_at=terms.expires_at,
        version=terms.version,
        deadline=terms.deadline,
    )


def revoke_payload(terms: RevokeTerms) -> dict[str, Any]:
    chain_id, contract = registry_domain()
    return revoke_typed_data(
        chain_id=chain_id,
        verifying_contract=contract,
        patient=terms.patient,
        grantee=terms.grantee,
        scope=terms.scope,
        purpose=terms.purpose,
        version=terms.version,
        deadline=terms.deadline,
    )


def _field(message: dict[str, Any], name: str, kind: str) -> Any:
    """One message member, typed as `kind` ("address", "uint" or "string"); errors name the path."""
    path = f"typed_data.message.{name}"
    if name not in message:
        raise BadPayload(f"{name} is missing from the signed message", field=path)
    value = message[name]
    if kind == "address":
        if not isinstance(value, str) or not is_address(value):
            raise BadPayload(f"{name} must be an Ethereum address", field=path)
        return to_checksum_address(value)
    if kind == "uint":
        # Wallets send uints as JSON numbers or decimal/hex strings; bools are not numbers here.
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadPayload(f"{name} must be an integer", field=path)
        try:
            number = int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise BadPayload(f"{name} must be an integer", field=path) from None
        if number < 0:
            raise BadPayload(f"{name} must not be negative", field=path)
        return number
    if not isinstance(value, str):
        raise BadPayload(f"{name} must be a string", field=path)
    return value


def _check_envelope(typed_data: object, primary_type: str) -> dict[str, Any]:
    if not isinstance(typed_data, dict):
        raise BadPayload("typed_data must be the EIP-712 object that was signed", field="typed_data")
    if typed_data.get("primaryType") != primary_type:
        raise BadPayload(f"primaryType must be {primary_type!r}", field="typed_data.primaryType")
    message = typed_data.get("message")
    if not isinstance(message, dict):
        raise BadPayload("typed_data.message must be an object", field="typed_data.message")
    return message


def _check_domain(submitted: dict[str, Any], canonical: dict[str, Any]) -> None:
    domain = submitted.get("domain")
    expected = canonical["domain"]
    if not isinstance(domain, dict):
        raise BadPayload("typed_data.domain must be an object", field="typed_data.domain")
    try:
        same_chain = int(domain.get("chainId", -1)) == int(expected["chainId"])
        same_contract = (
            to_checksum_address(str(domain.get("verifyingContract"))) == expected["verifyingContract"]
        )
    except (TypeError, ValueError):
        same_chain = same_contract = False
    if not same_chain:
        raise BadPayload(
            f"signed for chain {domain.get('chainId')!r}, this registry is on chain {expected['chainId']}",
            field="typed_data.domain.chainId",
            code="wrong_domain",
        )
    if not same_contract:
        raise BadPayload(
            "signed for another contract than this ConsentRegistry",
            field="typed_data.domain.verifyingContract",
            code="wrong_domain",
        )
    if domain.get("name") != expected["name"] or str(domain.get("version")) != expected["version"]:
        raise BadPayload("signed for another EIP-712 domain", field="typed_data.domain", code="wrong_domain")


def _check_signature(canonical: dict[str, Any], signature: object, signer: str) -> None:
    if not isinstance(signature, str) or len(signature.removeprefix("0x")) != 130:
        raise BadSignature("signature must be 65 bytes of hex", field="signature")
    try:
        recovered = Account.recover_message(encode_typed_data(full_message=canonical), signature=signature)
    except Exception:  # malformed v/r/s: eth-account raises several types
        raise BadSignature("signature cannot be recovered", field="signature") from None
    if recovered != signer:
        raise BadSignature("signature was not made by the patient's key", field="signature")


def _check_deadline(deadline: int) -> None:
    if deadline <= int(time.time()):
        raise BadPayload(
            "the signature's deadline has passed; request a new payload",
            field="typed_data.message.deadline",
            code="deadline_expired",
        )


def verify_signed_grant(
    typed_data: object, signature: object, *, domain: tuple[int, str] | None = None
) -> tuple[GrantTerms, dict[str, Any]]:
    """Parse and verify a signed Grant; returns its terms and the canonical payload.

    `domain` (chain id, registry address) may be passed by a caller verifying many at once.
    """
    message = _check_envelope(typed_data, "Grant")
    terms = GrantTerms(
        patient=_field(message, "patient", "address"),
        grantee=_field(message, "grantee", "address"),
        scope=_field(message, "scope", "string"),
        purpose=_field(message, "purpose", "uint"),
        expires_at=_field(message, "expiresAt", "uint"),
        version=_field(message, "version", "uint"),
        deadline=_field(message, "deadline", "uint"),
    )
    canonical = grant_payload(terms, domain=domain)
    _check_domain(typed_data, canonical)  # type: ignore[arg-type]
    _check_deadline(terms.deadline)
    _check_signature(canonical, signature, terms.patient)
    return terms, canonical


def verify_signed_revoke(typed_data: object, signature: object) -> tuple[RevokeTerms, dict[str, Any]]:
    message = _check_envelope(typed_data, "Revoke")
    terms = RevokeTerms(
        patient=_field(message, "patient", "address"),
        grantee=_field(message, "grantee", "address"),
        scope=_field(message, "scope", "string"),
        purpose=_field(message, "purpose", "uint"),
        version=_field(message, "version", "uint"),
        deadline=_field(message, "deadline", "uint"),
    )
    canonical = revoke_payload(terms)
    _check_domain(typed_data, canonical)  # type: ignore[arg-type]
    _check_deadline(terms.deadline)
    _check_signature(canonical, signature, terms.patient)
    return terms, canonical
