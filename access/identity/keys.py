"""Managed Ethereum keys: created for users without a wallet (and for hospital accounts), kept sealed.

A private key leaves its sealed form only inside `unlock_managed_key`/`unlock_hospital_key`, after
the owner's password checks out, and is handed back as a `LocalAccount` for the one signing request
at hand; callers must not store it. No log line, repr or exception here carries key bytes.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework import status

from access.models import Hospital, KeyKind, ManagedKey, User
from healthhash.errors import DomainError, Forbidden, NotFound, Unavailable
from healthhash.sealing import KeyRing, KeyUnavailable, SealBroken, open_secret, seal_secret

logger = logging.getLogger(__name__)


class BadPassword(Forbidden):
    code = "bad_password"


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
    logger.info("managed key %s created for user %s", account.address, user.pk)
    return managed


@transaction.atomic
def create_hospital_key(*, hospital: Hospital, private_key: bytes | None = None) -> ManagedKey:
    """Create (or import) the hospital's account key, set `hospital.account_address`, save the hospital.

    `hospital` may be unsaved: its row needs the address (unique) and the seal needs its id.
    """
    account = _new_account(private_key)
    hospital.account_address = account.address
    hospital.save()
    managed = ManagedKey.objects.create(
        hospital=hospital,
        address=account.address,
        sealed_private_key=seal_secret(
            account.key, ring=_key_ring(), context=_hospital_context(hospital.pk, account.address)
        ),
    )
    logger.info("managed key %s created for hospital %s", account.address, hospital.slug)
    return managed


def unlock_managed_key(*, user: User, password: str) -> LocalAccount:
    """The user's own key, for one signing request. Wrong password -> BadPassword (403)."""
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


def _check_password(user: User, password: str) -> None:
    # Django's check_password is constant-time and upgrades old hashes as a side effect.
    if not password or not user.check_password(password):
        raise BadPassword("The password is wrong.", field="password")


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
