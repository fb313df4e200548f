"""DRF authentication by API token: `Authorization: Token <key>`, looked up by the key's SHA-256.

Only the hash is stored, so a database leak yields no usable token. A token works until it expires
(`ApiToken.expires_at`) or is revoked. Tokens are not sent by browsers on their own, so
token-authenticated requests need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from access.models import ApiToken

KEYWORD = "Token"
# Writing last_used_at on every request would turn each read into a write; a minute is precise
# enough to tell a user which token is still in use.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(plaintext: str) -> str:
    """The stored form of a token: hex SHA-256 (tokens are 256-bit random, so no salt or KDF needed)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticates `Authorization: Token <key>`; other schemes are left to the next class."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Token <key>'.")
        try:
            plaintext = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the key is not ASCII.") from None
        return self._authenticate_key(plaintext)

    def _authenticate_key(self, plaintext: str) -> tuple[Any, ApiToken]:
        digest = hash_token(plaintext)
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=digest, revoked_at__isnull=True, expires_at__gt=timezone.now())
            .first()
        )
        # The lookup is by a hash of a random secret, so its timing reveals nothing useful; the
        # constant-time compare guards against a database whose collation matched loosely.
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        self._touch(token)
        return token.user, token

    @staticmethod
    def _touch(token: ApiToken) -> None:
        now = timezone.now()
        if token.last_used_at is not None and token.last_used_at >= now - LAST_USED_RESOLUTION:
            return  # fresh as read: no statement at all (this ran an UPDATE on every request)
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        # Conditional update: concurrent requests write at most once per minute between them.
        if ApiToken.objects.filter(Q(pk=token.pk) & stale).update(last_used_at=now):
            token.last_used_at = now

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to unauthenticated requests.
        return KEYWORD


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token scheme in /api/schema/ (registered by being defined)."""

    target_class = "access.identity.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create keys with POST /api/auth/tokens.",
        }
