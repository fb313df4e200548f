"""Sign-In with Ethereum (EIP-4361): nonces we issue, and verification of a wallet's signed message.

Checks run in a fixed order — format, domain, chain id, nonce (ours, unused, within its TTL),
message times, signature — and only then is the nonce consumed, by a conditional update, so a
replayed message fails even when two copies race. An unknown address signs up as a patient.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

import pydantic
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status
from siwe import (
    ExpiredMessage,
    InvalidSignature,
    NotYetValidMessage,
    SiweMessage,
    VerificationError,
)

from access.identity.selectors import user_by_address
from access.models import KeyKind, Role, SiweNonce, User
from healthhash.errors import DomainError

logger = logging.getLogger(__name__)

SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
EXPECTED_LAYOUT = (
    "'<domain> wants you to sign in with your Ethereum account:', the EIP-55 address, an optional"
    " statement, then URI, Version, Chain ID, Nonce, Issued At lines"
)
# Used nonces are kept this long so a replay reads "nonce_used" rather than "nonce_unknown".
NONCE_RETENTION = timedelta(days=1)


class SiweRejected(DomainError):
    """The sign-in message or its signature was not accepted (401)."""

    code = "siwe_rejected"
    status_code = status.HTTP_401_UNAUTHORIZED


class SiweMalformed(DomainError):
    code = "siwe_malformed"


def issue_nonce() -> str:
    """A fresh 128-bit nonce (hex, so EIP-4361's alphanumeric rule holds), stored for one use."""
    now = timezone.now()
    SiweNonce.objects.filter(created_at__lt=now - NONCE_RETENTION).delete()
    nonce = secrets.token_hex(16)
    SiweNonce.objects.create(nonce=nonce)
    return nonce


def parse_message(message: str) -> SiweMessage:
    """Parse an EIP-4361 message; anything the grammar rejects is SiweMalformed (400)."""
    try:
        return SiweMessage.from_message(message)
    except pydantic.ValidationError as exc:  # the layout parsed, a field did not validate
        first = exc.errors()[0]
        reason = f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    except Exception:  # the ABNF parser's own errors print the whole grammar: say it plainly
        reason = f"it does not follow the EIP-4361 layout ({EXPECTED_LAYOUT})"
    raise SiweMalformed(f"Not a Sign-In with Ethereum message: {reason}.", field="message")


@transaction.atomic
def verify_siwe(*, message: str, signature: str, chain_id: int) -> User:
    """Verify a signed sign-in message against our domain, `chain_id` and nonces; return its user."""
    parsed = parse_message(message)
    if parsed.domain != settings.SIWE_DOMAIN:
        raise SiweRejected(
            f"The message is for {parsed.domain!r}, this site is {settings.SIWE_DOMAIN!r}.",
            code="siwe_domain",
        )
    if parsed.chain_id != chain_id:
        raise SiweRejected(
            f"The message is for chain {parsed.chain_id}, this site runs on chain {chain_id}.",
            code="siwe_chain_id",
        )
    nonce = _usable_nonce(parsed.nonce)
    _verify_times_and_signature(parsed, signature)
    # Conditional update: of two concurrent verifications of the same nonce exactly one wins.
    if not SiweNonce.objects.filter(pk=nonce.pk, used_at__isnull=True).update(used_at=timezone.now()):
        raise SiweRejected("This sign-in message was already used.", code="nonce_used")
    return _user_for(parsed.address)


def _usable_nonce(value: str) -> SiweNonce:
    nonce = SiweNonce.objects.filter(nonce=value).first()
    if nonce is None:
        raise SiweRejected("The message's nonce was not issued by this site.", code="nonce_unknown")
    if nonce.used_at is not None:
        raise SiweRejected("This sign-in message was already used.", code="nonce_used")
    if nonce.created_at < timezone.now() - timedelta(seconds=settings.SIWE_NONCE_TTL_S):
        raise SiweRejected("The nonce has expired; ask for a new one.", code="nonce_expired")
    return nonce


def _verify_times_and_signature(parsed: SiweMessage, signature: str) -> None:
    if not isinstance(signature, str) or not SIGNATURE_RE.match(signature):
        raise SiweMalformed("The signature must be 0x followed by 65 bytes of hex.", field="signature")
    try:
        # Domain and nonce were checked above with better messages; this covers expirationTime,
        # notBefore and the EIP-191 signature (no provider: contract wallets are not accepted).
        parsed.verify(signature, timestamp=timezone.now())
    except ExpiredMessage:
        raise SiweRejected("The sign-in message has expired.", code="siwe_expired") from None
    except NotYetValidMessage:
        raise SiweRejected("The sign-in message is not valid yet.", code="siwe_not_yet_valid") from None
    except InvalidSignature:
        raise SiweRejected(
            f"The signature was not made by {parsed.address}.", code="siwe_bad_signature"
        ) from None
    except VerificationError:
        raise SiweRejected("The sign-in message was not accepted.") from None


def _user_for(address: str) -> User:
    user = user_by_address(address)
    if user is not None:
        if not user.is_active:
            raise SiweRejected("This account is disabled.", code="account_disabled")
        return user
    user = User(username=address.lower(), role=Role.PATIENT, eth_address=address, key_kind=KeyKind.WALLET)
    user.set_unusable_password()
    user.save()
    logger.info("new wallet patient %s signed up by SIWE", address)
    return user
