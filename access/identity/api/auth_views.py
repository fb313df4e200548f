"""Authentication API: session login (password or Sign-In with Ethereum), logout, API tokens, me.

CSRF, for a single-page app: `GET /api/auth/csrf` sets the `csrftoken` cookie (and returns the
token); every unsafe request made with the session cookie — including login, SIWE verify and
logout, which run before or outside a session — must echo it in the `X-CSRFToken` header.
Requests authenticated by `Authorization: Token <key>` need no CSRF token.

API tokens expire (API_TOKEN_TTL_DAYS). Minting one needs the password, or a session that signed in
within API_TOKEN_FRESH_SIGN_IN_S; a request made with a token always needs the password, so a stolen
token cannot mint itself a successor. `GET /api/auth/tokens` lists my live tokens (prefix, name,
created, expires, last used; never the secret), `DELETE /api/auth/tokens/{id}` revokes one, and
`POST /api/auth/logout` sent with a token revokes that token. Logging out of a session leaves tokens
alone: they belong to scripts, not to the browser session that made them.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from access.identity import password_guard, siwe
from access.identity import services as identity_services
from access.identity.api.serializers import (
    CsrfOut,
    ErrorOut,
    LoginIn,
    MeSerializer,
    SiweNonceOut,
    SiweVerifyIn,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
)
from access.identity.authentication import ApiTokenAuthentication
from access.identity.users import signed_in_user
from access.models import ApiToken, User
from contracts import client
from healthhash.errors import DomainError, Forbidden

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut}
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"
# When this session last proved who it is (password or SIWE), as epoch seconds.
SIGNED_IN_AT = "healthhash.signed_in_at"


class BadCredentials(DomainError):
    code = "bad_credentials"
    status_code = status.HTTP_401_UNAUTHORIZED


class PasswordRequired(Forbidden):
    code = "password_required"


class CsrfRequired(BasePermission):
    """Enforce Django's CSRF check on views that take no session auth (DRF only checks it for one)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS or isinstance(request.auth, ApiToken):
            return True
        try:
            SessionAuthentication().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise Forbidden(
                f"{exc.detail} Fetch GET /api/auth/csrf and send its token in the X-CSRFToken header.",
                code="csrf_failed",
            ) from None
        return True


def _me(user: User) -> dict:
    return MeSerializer(user).data


def _start_session(request: Request, user: User) -> None:
    # login() rotates the session key and the CSRF token (the response sets the new cookie).
    login(request._request, user, backend=SESSION_BACKEND)
    request._request.session[SIGNED_IN_AT] = time.time()


def _signed_in_recently(request: Request) -> bool:
    """A session (not a token) that proved its user within API_TOKEN_FRESH_SIGN_IN_S."""
    if not isinstance(request.successful_authenticator, SessionAuthentication):
        return False
    signed_in_at = request._request.session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float):
        return False
    return time.time() - signed_in_at <= settings.API_TOKEN_FRESH_SIGN_IN_S


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: CsrfOut}, auth=[])
    def get(self, request: Request) -> Response:
        """Set the `csrftoken` cookie; send its value as `X-CSRFToken` on unsafe session requests."""
        return Response({"csrf_token": get_token(request._request)})


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny, CsrfRequired]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sign_in"

    @extend_schema(request=LoginIn, responses={200: MeSerializer, **ERRORS}, auth=[])
    def post(self, request: Request) -> Response:
        """Log in with username and password; starts a session (CSRF token required)."""
        data = LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            raise BadCredentials("Unknown username or wrong password.")
        _start_session(request, user)
        password_guard.clear_lock(user=user)  # the owner proved the password: lift a re-confirmation lock
        return Response(_me(user))


class LogoutView(APIView):
    # Only a token is authenticated here (a session needs none to end); an invalid token is 401.
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [AllowAny, CsrfRequired]

    @extend_schema(request=None, responses={204: None, 401: ErrorOut, 403: ErrorOut})
    def post(self, request: Request) -> Response:
        """End the session (harmless without one); sent with `Authorization: Token`, revoke that token."""
        if isinstance(request.auth, ApiToken):
            identity_services.revoke_api_token(user=request.auth.user, token_id=request.auth.pk)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiweNonceView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: SiweNonceOut}, auth=[])
    def get(self, request: Request) -> Response:
        """A fresh nonce and the values a Sign-In with Ethereum message must carry."""
        nonce = siwe.issue_nonce()
        now = timezone.now()
        body = {
            "nonce": nonce,
            "domain": settings.SIWE_DOMAIN,
            "chain_id": client.chain_id(),
            "uri": request.build_absolute_uri("/"),
            "issued_at": now,
            "expires_at": now + timedelta(seconds=settings.SIWE_NONCE_TTL_S),
        }
        return Response(SiweNonceOut(body).data)


class SiweVerifyView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny, CsrfRequired]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sign_in"

    @extend_schema(request=SiweVerifyIn, responses={200: MeSerializer, **ERRORS}, auth=[])
    def post(self, request: Request) -> Response:
        """Verify a signed EIP-4361 message; log in (an unknown address signs up as a patient)."""
        data = SiweVerifyIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = siwe.verify_siwe(**data.validated_data, chain_id=client.chain_id())
        _start_session(request, user)
        return Response(_me(user))


class ApiTokensView(APIView):
    @extend_schema(responses={200: TokenOut(many=True)})
    def get(self, request: Request) -> Response:
        """My live API tokens: name, prefix, created, expires, last used (never the tokens themselves)."""
        tokens = ApiToken.objects.filter(
            user=signed_in_user(request), revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        return Response(TokenOut(tokens, many=True).data)

    @extend_schema(
        request=TokenCreateIn, responses={201: TokenCreatedOut, 423: ErrorOut, 429: ErrorOut, **ERRORS}
    )
    def post(self, request: Request) -> Response:
        """Create an API token for scripts: `Authorization: Token <token>`. Shown once.

        Needs `password` unless this session signed in moments ago; wrong passwords count towards the
        same per-user throttle and lock as unlocking a managed key (429 throttled, 423 key_locked).
        """
        data = TokenCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        password = fields.pop("password", "")
        if password:
            password_guard.confirm_password(user=signed_in_user(request), password=password)
        elif not _signed_in_recently(request):
            raise PasswordRequired(
                "Send your password (or sign in again) to create a token.", field="password"
            )
        token, plaintext = identity_services.create_api_token(user=signed_in_user(request), **fields)
        body = {**TokenOut(token).data, "token": plaintext}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenRevokeView(APIView):
    @extend_schema(responses={204: None, 404: OpenApiResponse(ErrorOut, description="Not one of my tokens")})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revoke one of my API tokens."""
        identity_services.revoke_api_token(user=signed_in_user(request), token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer, 401: ErrorOut})
    def get(self, request: Request) -> Response:
        """Who I am: role, address, key kind and hospital."""
        return Response(_me(signed_in_user(request)))
