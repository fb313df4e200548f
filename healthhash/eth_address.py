"""Ethereum addresses coming in from outside: one normaliser to the EIP-55 checksummed form, and the
DRF serializer field built on it.

Every address the project stores (`User.eth_address`, `Consent.patient_address`, ...) is checksummed,
so a value is normalised here once, at the edge, and then compared exactly. Accepted: 0x + 40 hex
digits in lower case, upper case, or mixed case with a valid EIP-55 checksum; a mixed-case value
whose checksum is wrong is refused, since it is most likely mistyped (ethers' getAddress rule; since
eth-utils 5 `is_address` alone no longer checks it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_utils import is_address, to_checksum_address
from rest_framework import serializers

from healthhash.errors import DomainError


class BadAddress(DomainError):
    """A value that must be an Ethereum address is not one; `field` names it."""

    code = "bad_address"


def checksummed_or_none(value: object) -> str | None:
    """`value` as a checksummed address, or None when it is not a text Ethereum address."""
    return _checksummed(value) if isinstance(value, str) else None


@lru_cache(maxsize=65536)
def _checksummed(value: str) -> str | None:
    # Cached: the same patients, grantees and contracts recur in every batch, and each checksum is a
    # keccak (relaying 100 grants normalises ~900 addresses).
    if not is_address(value):
        return None
    checksummed = to_checksum_address(value)
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    mixed_case = digits not in (digits.lower(), digits.upper())
    if mixed_case and digits != checksummed[2:]:
        return None  # a checksum that does not match: mistyped
    return checksummed


def checksummed_address(value: object, *, field: str, error: type[DomainError] = BadAddress) -> str:
    """`value` as a checksummed address; otherwise raises `error` (BadAddress) naming `field`.

    `field` may be a path ("typed_data.message.grantee"); the message names its last part. A caller
    whose errors belong to a family of its own (a signed payload, an access-log event) passes its
    DomainError subclass as `error`, so clients keep seeing that family's code.
    """
    address = checksummed_or_none(value)
    if address is None:
        name = field.rsplit(".", 1)[-1]
        raise error(f"{name} must be an Ethereum address", field=field)
    return address


class EthAddressField(serializers.CharField):
    """A serializer field that yields the checksummed address; a malformed one is a 400 with
    error `bad_address` and the field's name. With `allow_blank=True` an empty value stays ""."""

    default_error_messages = {"bad_address": "{name} must be an Ethereum address"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 42)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        address = checksummed_or_none(super().to_internal_value(data))
        if address is None:
            self.fail("bad_address", name=self.field_name)
        return address
