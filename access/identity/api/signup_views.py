"""Sign-up API: a person becomes a patient, by password (a managed key is created) or by wallet (SIWE).

Patients have no Directory entry on chain (the Directory lists hospitals and doctors only), so sign-up
relays nothing: it creates the user (and the managed key) and starts a session, answering 201 at once.
Doctors and hospital admins do not sign up: their admins create them (see directory_views).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from access.identity import services as identity_services
from access.identity.api.auth_views import CsrfRequired, _start_session
from access.identity.api.serializers import ErrorOut, MeSerializer, SignupIn
from contracts import client


class SignupView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny, CsrfRequired]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sign_in"

    @extend_schema(
        request=SignupIn,
        responses={
            201: MeSerializer,
            400: ErrorOut,
            401: OpenApiResponse(ErrorOut, description="The SIWE message or signature was not accepted"),
            403: OpenApiResponse(ErrorOut, description="CSRF token missing"),
            409: OpenApiResponse(ErrorOut, description="username_taken or address_taken"),
            429: ErrorOut,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Sign up as a patient and start a session (CSRF token required, as for login).

        Send `username` + `password` (+ `email`): the password must pass the password rules, and a
        managed Ethereum key is created, sealed, and unlocked by that password whenever you sign a
        consent. Or send a Sign-In with Ethereum `message` (nonce from GET /api/auth/siwe/nonce) and
        its `signature`: your wallet is your key, no key is kept here. Patients need no entry in the
        chain's Directory (it lists hospitals and doctors), so nothing waits for the chain.
        """
        data = SignupIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "message" in fields:
            user = identity_services.sign_up_wallet_patient(
                message=fields["message"], signature=fields["signature"], chain_id=client.chain_id()
            )
        else:
            user = identity_services.sign_up_patient(
                username=fields["username"], password=fields["password"], email=fields["email"]
            )
        _start_session(request, user)
        return Response(MeSerializer(user).data, status=status.HTTP_201_CREATED)
