"""Managed Ethereum keys: created for users without a wallet (and for hospital accounts), kept sealed.

A private key leaves its sealed form only inside `unlock_managed_key`/`unlock_hospital_key`, after
the owner's password checks out, and is handed back as a `LocalAccount` for the one signing request
at hand; callers must not store it. No log line, repr or exception here carries key bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework import status

from access.identity.password_guard import BadPassword, KeyLocked, PasswordConfirmThrottled, confirm_password
from access.models import Hospital, KeyKind, ManagedKey, User
from healthhash import key_rotation
from healthhash.errors import DomainError, Forbidden, NotFound, Unavailable
from healthhash.sealing import KeyRing, KeyUnavailable, SealBroken, open_secret, public_key_of, seal_secret

logger = logging.getLogger(__name__)

# The password errors live in password_guard; re-exported so callers of the unlock functions need one module.
__all__ = [
    "BadPassword",
    "KeyLocked",
    "ManagedKeyBroken",
    "ManagedKeyUnavailable",
    "PasswordConfirmThrottled",
    "create_hospital_key",
    "create_managed_key",
    "hospital_public_key",
    "register_sealed_columns",
    "unlock_hospital_key",
    "unlock_managed_key",
]


class ManagedKeyUnavailable(Unavailable):
    code = "managed_key_unavailable"


class ManagedKeyBroken(DomainError):
    code = "managed_key_broken"
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR


@lru_cache(maxsize=4)
def _ring_for(spec: str) -> KeyRing:
    return KeyRing.from_setting(spec)


def _key_ring() -> KeyRing:
    # Read per call (tests override the setting); parsed once per distinct value.
    return _ring_for(settings.KEY_ENCRYPTION_KEYS)


def _context(*, owner: str, address: str) -> bytes:
    """What a sealed key is bound to: its owner (user or hospital row) and its address."""
    return f"healthhash:managed-eth-key:v1:{owner}:{address}".encode("ascii")


def _user_context(user_id: int, address: str) -> bytes:
    return _context(owner=f"user:{user_id}", address=address)


def _hospital_context(hospital_id: int, address: str) -> bytes:
    return _context(owner=f"hospital:{hospital_id}", address=address)


def _row_context(row: Mapping[str, Any]) -> bytes:
    """The seal context of a ManagedKey row given as values (for rotation, which reads no models)."""
    if row["user_id"] is not None:
        return _user_context(row["user_id"], row["address"])
    return _hospital_context(row["hospital_id"], row["address"])


def register_sealed_columns() -> None:
    """Put users' and hospitals' managed keys into `rotate_kek` (called from AccessConfig.ready())."""
    key_rotation.register_sealed_column(
        key_rotation.SealedColumn(
            label="managed Ethereum keys",
            model=ManagedKey,
            field="sealed_private_key",
            context_fields=("user_id", "hospital_id", "address"),
            context=_row_context,
        )
    )


def _new_account(private_key: bytes | None) -> LocalAccount:
    if private_key is None:
        return Account.create()
    try:
        return Account.from_key(private_key)
    except Exception:  # the message could quote the key
        raise DomainError("Not a valid secp256k1 private key.", code="bad_private_key") from None


@transaction.atomic
def create_managed_key(*, user: User, private_key: bytes | None = None) -> ManagedKey:
    """Give `user` a managed key (fresh, or `private_key` imported); sets eth_address, key_kind=managed."""
    if user.eth_address:
        raise DomainError(
            f"User {user.username} already has the address {user.eth_address}.", code="has_address"
        )
    account = _new_account(private_key)
    managed = ManagedKey.objects.create(
        user=user,
        address=account.address,
        sealed_private_key=seal_secret(
            account.key, ring=_key_ring(), context=_user_context(user.pk, account.address)
        ),
    )
    user.eth_address = account.address
    user.key_kind = KeyKind.MANAGED
    user.save(update_fields=["eth_address", "key_kind"])
    logger.debug("managed key %s created for user %s", account.address, user.pk)
    return managed


@transaction.atomic
def create_hospital_key(*, hospital: Hospital, private_key: bytes | None = None) -> ManagedKey:
    """Create (or import) the hospital's account key, set `hospital.account_address`, save the hospital.

    `hospital` may be unsaved: its row needs the address (unique) and the seal needs its id.
    """
    account = _new_account(private_key)
    hospital.account_address = account.address
    hospital.account_public_key = public_key_of(account.key).hex()
    hospital.save()
    managed = ManagedKey.objects.create(
        hospital=hospital,
        address=account.address,
        sealed_private_key=seal_secret(
            account.key, ring=_key_ring(), context=_hospital_context(hospital.pk, account.address)
        ),
    )
    logger.debug("managed key %s created for hospital %s", account.address, hospital.slug)
    return managed


def unlock_managed_key(*, user: User, password: str) -> LocalAccount:
    """The user's own key, for one signing request.

    Wrong password -> BadPassword (403); too many tries -> PasswordConfirmThrottled (429); too many
    wrong passwords in a row -> KeyLocked (423) for a while (see password_guard).
    """
    _check_password(user, password)
    managed = ManagedKey.objects.filter(user=user).first()
    if managed is None:
        raise NotFound(
            "This account has no managed key (it signs with its own wallet).", code="no_managed_key"
        )
    return _open(managed, _user_context(user.pk, managed.address))


def unlock_hospital_key(*, hospital: Hospital, user: User, password: str) -> LocalAccount:
    """The hospital account's key, for its current admin only, for one signing request."""
    if hospital.admin_id != user.pk:
        raise Forbidden("Only the hospital's admin may sign for its account.", code="not_hospital_admin")
    _check_password(user, password)
    managed = ManagedKey.objects.filter(hospital=hospital).first()
    if managed is None:
        raise NotFound(f"Hospital {hospital.slug} has no managed key.", code="no_managed_key")
    return _open(managed, _hospital_context(hospital.pk, managed.address))


def hospital_public_key(*, hospital: Hospital) -> bytes:
    """The hospital account's compressed secp256k1 public key (what dataset releases are sealed to).

    Hospitals whose key was made before the column existed get it filled here, once: the server opens
    the sealed key under the KEK ring to compute the public half (no signing, so no password) and
    keeps only that.
    """
    if hospital.account_public_key:
        return bytes.fromhex(hospital.account_public_key)
    managed = ManagedKey.objects.filter(hospital=hospital).first()
    if managed is None:
        raise NotFound(f"Hospital {hospital.slug} has no managed key.", code="no_managed_key")
    public_key = public_key_of(_open(managed, _hospital_context(hospital.pk, managed.address)).key)
    hospital.account_public_key = public_key.hex()
    Hospital.objects.filter(pk=hospital.pk).update(account_public_key=hospital.account_public_key)
    return public_key


def _check_password(user: User, password: str) -> None:
    # Throttled per user and locked after repeated wrong passwords (password_guard): whoever holds a
    # stolen session or token must not be able to guess the password here.
    confirm_password(user=user, password=password)


def _open(managed: ManagedKey, context: bytes) -> LocalAccount:
    try:
        secret = open_secret(bytes(managed.sealed_private_key), ring=_key_ring(), context=context)
    except KeyUnavailable as exc:
        # The message names the key id only (KeyUnavailable never carries key bytes).
        raise ManagedKeyUnavailable(f"The managed key cannot be opened: {exc}") from None
    except SealBroken:
        logger.error("managed key %s failed authentication (tampered or moved)", managed.address)
        raise ManagedKeyBroken("The managed key failed its integrity check.") from None
    account = Account.from_key(secret)
    if account.address != managed.address:
        raise ManagedKeyBroken("The managed key does not match its recorded address.")
    return account
