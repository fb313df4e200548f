"""EIP-712 consent payloads: the registry domain they are bound to, and the check of a signed one (the
messages themselves, Grant and Revoke, are contracts.messages).

A submitted payload is never trusted as sent: its message fields are parsed, the canonical payload is
rebuilt from them with *our* chain id and contract address, and the signature is recovered over that.
So a payload signed for another chain, another contract or with altered types fails here, off chain,
before anything is stored.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from django.conf import settings
from eth_account import Account
from eth_account.messages import encode_typed_data

from contracts import client
from contracts.messages import BadMessage, Domain, Grant, Revoke
from healthhash.errors import DomainError
from healthhash.eth_address import checksummed_or_none

ConsentChange = TypeVar("ConsentChange", Grant, Revoke)


class BadPayload(BadMessage):
    """The envelope or domain of a signed payload is wrong (a bad message member raises BadMessage,
    with the same code "bad_payload")."""


class BadSignature(DomainError):
    code = "bad_signature"


def registry_domain() -> Domain:
    """(chain id, ConsentRegistry address) the payloads are bound to."""
    # The address comes from the deployments table: building a web3 Contract here cost ~1.5 ms a call.
    return Domain(client.chain_id(), client.deployment_address("ConsentRegistry"))


def new_deadline() -> int:
    return int(time.time()) + settings.CONSENT_SIGNATURE_TTL_S


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
        same_contract = checksummed_or_none(domain.get("verifyingContract")) == expected["verifyingContract"]
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


def _verify_signed(
    message_type: type[ConsentChange], typed_data: object, signature: object, domain: Domain | None
) -> ConsentChange:
    message = message_type.from_message(_check_envelope(typed_data, message_type.primary_type))
    canonical = message.typed_data(domain or registry_domain())
    _check_domain(typed_data, canonical)  # type: ignore[arg-type]
    _check_deadline(message.deadline)
    _check_signature(canonical, signature, message.patient)
    return message


def verify_signed_grant(typed_data: object, signature: object, *, domain: Domain | None = None) -> Grant:
    """Parse and verify a signed Grant; returns it as rebuilt on our domain (what the outbox relays).

    `domain` (chain id, registry address) may be passed by a caller verifying many at once.
    """
    return _verify_signed(Grant, typed_data, signature, domain)


def verify_signed_revoke(typed_data: object, signature: object, *, domain: Domain | None = None) -> Revoke:
    """Parse and verify a signed Revoke, as `verify_signed_grant` does a Grant."""
    return _verify_signed(Revoke, typed_data, signature, domain)
