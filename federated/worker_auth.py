"""Requests a hospital worker makes to the API, signed with the hospital's key (EIP-191 personal_sign).

The worker has no database account and no session: what it asks for (a dataset release, the feature
moments it reports, a refusal) is authorised by the hospital account's signature over a plain-text
statement of the request, the SHA-256 of its JSON body and an expiry. The server recovers the signer and
compares it with the hospital's registered account, so only the data holder can ask for its release.
Local updates need none of this: their EIP-712 `Update` signature is the one the contract checks.

Pure Python (eth_account), used on both sides.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

ACTIONS = ("release", "moments", "refusal")
# How far ahead a request's expiry may be: a captured request is worthless after this.
MAX_VALIDITY_S = 300


class BadWorkerSignature(ValueError):
    """The request's signature, expiry or action is not acceptable (the detail says which)."""


def body_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 of the body's canonical JSON (keys sorted, compact, UTF-8), hex."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def request_text(
    *, action: str, job_id: str, round_number: int, hospital_id: str, body: Mapping[str, Any], expires: int
) -> str:
    """The statement the hospital signs: readable, and binding every part of the request."""
    if action not in ACTIONS:
        raise BadWorkerSignature(f"unknown worker action {action!r}")
    return (
        "HealthHash hospital worker request\n"
        f"action: {action}\n"
        f"job: {job_id.lower()}\n"
        f"round: {int(round_number)}\n"
        f"hospital: {hospital_id.lower()}\n"
        f"body: {body_digest(body)}\n"
        f"expires: {int(expires)}"
    )


def sign_request(
    private_key: bytes,
    *,
    action: str,
    job_id: str,
    round_number: int,
    hospital_id: str,
    body: Mapping[str, Any],
    validity_s: int = 120,
) -> dict[str, Any]:
    """The `auth` member of the request: {"expires": unix seconds, "signature": "0x.."}."""
    expires = int(time.time()) + validity_s
    text = request_text(
        action=action,
        job_id=job_id,
        round_number=round_number,
        hospital_id=hospital_id,
        body=body,
        expires=expires,
    )
    signed = Account.sign_message(encode_defunct(text=text), private_key=private_key)
    return {"expires": expires, "signature": "0x" + bytes(signed.signature).hex()}


def recover_signer(
    *,
    action: str,
    job_id: str,
    round_number: int,
    hospital_id: str,
    body: Mapping[str, Any],
    auth: Mapping[str, Any],
    now: float | None = None,
) -> str:
    """The checksummed address that signed this request; BadWorkerSignature if expired, too far ahead or
    malformed. The caller compares it with the hospital's account."""
    try:
        expires = int(auth["expires"])
        signature = bytes.fromhex(str(auth["signature"]).removeprefix("0x"))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadWorkerSignature("auth must be {expires: int, signature: 0x hex}") from exc
    now = time.time() if now is None else now
    if expires < now:
        raise BadWorkerSignature("the request has expired")
    if expires > now + MAX_VALIDITY_S:
        raise BadWorkerSignature(f"the request's expiry is more than {MAX_VALIDITY_S} s ahead")
    text = request_text(
        action=action,
        job_id=job_id,
        round_number=round_number,
        hospital_id=hospital_id,
        body=body,
        expires=expires,
    )
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception as exc:  # eth_account raises several types for a malformed signature
        raise BadWorkerSignature("the signature does not recover") from exc
