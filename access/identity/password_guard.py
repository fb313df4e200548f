"""Password re-confirmation (unlocking a managed key, minting an API token): throttled per user, and
locked after repeated wrong passwords.

A caller holding a stolen session or token can otherwise guess the owner's password here as fast as
it likes. So, per user (not per client address, which an attacker can change):

- at most ``PASSWORD_CONFIRM_RATE`` attempts (DRF rate syntax, default ``"20/minute"``), right or
  wrong; more are refused with 429 ``throttled``;
- ``PASSWORD_CONFIRM_MAX_FAILURES`` wrong passwords in a row lock every re-confirmation for
  ``PASSWORD_CONFIRM_LOCKOUT_S`` seconds: 423 ``key_locked``, refused even with the right password.

The lock lifts by itself when its time is up, or at once when the owner signs in with the password
(`clear_lock`, called by the password login, which has its own throttle). A right password resets
the failure count.

The counters live in Django's cache, not in the database, because a wrong password raises out of
the caller's transaction and would roll a database counter back with it. With several web processes,
point ``CACHE_URL`` at a shared cache (Redis), as the sign-in throttle also needs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import status
from rest_framework.throttling import SimpleRateThrottle

from access.models import User
from healthhash.errors import DomainError, Forbidden

logger = logging.getLogger(__name__)

_FAILURES_KEY = "healthhash:password-confirm:failures:{user_id}"
_LOCK_KEY = "healthhash:password-confirm:locked-until:{user_id}"


class BadPassword(Forbidden):
    code = "bad_password"


class PasswordConfirmThrottled(DomainError):
    """Too many re-confirmations for this user in the current window; `retry_after_s` says when."""

    code = "throttled"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, field="password")
        self.retry_after_s = retry_after_s


class KeyLocked(DomainError):
    """Too many wrong passwords in a row: re-confirmation is locked until `locked_until` (epoch s)."""

    code = "key_locked"
    status_code = status.HTTP_423_LOCKED

    def __init__(self, *, locked_until: float, just_now: bool) -> None:
        retry_after_s = max(1, int(locked_until - time.time()))
        opening = "Wrong password. Too many wrong passwords" if just_now else "Too many wrong passwords"
        super().__init__(
            f"{opening}: your key is locked for {_minutes(retry_after_s)}. Signing in again with your "
            "password unlocks it now.",
            field="password",
        )
        self.locked_until = locked_until
        self.retry_after_s = retry_after_s


class _PerUserRate(SimpleRateThrottle):
    """DRF's sliding-window throttle, keyed by user id and read from settings on every use."""

    scope = "password_confirm"
    cache = cache

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        super().__init__()

    def get_rate(self) -> str:
        return settings.PASSWORD_CONFIRM_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"user:{self.user_id}"}


def confirm_password(*, user: User, password: str) -> None:
    """Pass if `password` is `user`'s and the user is neither locked nor throttled.

    Raises KeyLocked (423), PasswordConfirmThrottled (429) or BadPassword (403), in that order of
    checks: a locked user learns nothing about the password, however right it is.
    """
    locked_until = cache.get(_LOCK_KEY.format(user_id=user.pk))
    if locked_until is not None and locked_until > time.time():
        raise KeyLocked(locked_until=locked_until, just_now=False)
    rate = _PerUserRate(user.pk)
    # The key comes from the user id, so DRF's throttle needs no request or view here.
    if not rate.allow_request(None, None):  # type: ignore[arg-type]
        wait = max(1, int(rate.wait() or 1))
        raise PasswordConfirmThrottled(
            f"Too many password confirmations; try again in {wait} s.", retry_after_s=wait
        )
    # Django's check_password is constant-time and upgrades old hashes as a side effect.
    if password and user.check_password(password):
        cache.delete(_FAILURES_KEY.format(user_id=user.pk))
        return
    _count_failure(user)
    raise BadPassword("The password is wrong.", field="password")


def clear_lock(*, user: User) -> None:
    """Lift the lock and forget past failures: the owner has just proved the password elsewhere."""
    cache.delete_many([_LOCK_KEY.format(user_id=user.pk), _FAILURES_KEY.format(user_id=user.pk)])


def _count_failure(user: User) -> None:
    lockout_s = settings.PASSWORD_CONFIRM_LOCKOUT_S
    key = _FAILURES_KEY.format(user_id=user.pk)
    # add() then incr(): atomic on Redis and per process on locmem; the count expires with the window.
    cache.add(key, 0, timeout=lockout_s)
    failures = cache.incr(key)
    if failures < settings.PASSWORD_CONFIRM_MAX_FAILURES:
        return
    locked_until = time.time() + lockout_s
    cache.set(_LOCK_KEY.format(user_id=user.pk), locked_until, timeout=lockout_s)
    cache.delete(key)
    logger.warning("password re-confirmation locked for user %s after %s wrong passwords", user.pk, failures)
    raise KeyLocked(locked_until=locked_until, just_now=True)


def _minutes(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
