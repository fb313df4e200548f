"""Access-request API: doctors ask, patients approve (signing a grant, possibly narrower) or decline."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.consent import requests as access_requests
from access.consent.api.request_serializers import (
    AccessRequestIn,
    AccessRequestOut,
    AccessRequestQuery,
    ApproveIn,
    DeclineIn,
    NarrowingIn,
)
from access.identity.users import signed_in_user
from access.models import AccessRequest


class AccessRequestListView(ListAPIView):
    serializer_class = AccessRequestOut

    def get_queryset(self) -> QuerySet[AccessRequest]:
        query = AccessRequestQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        requests = access_requests.requests_visible_to(signed_in_user(self.request))
        if query.validated_data.get("status"):
            requests = requests.filter(status=query.validated_data["status"])
        return requests

    @extend_schema(parameters=[AccessRequestQuery], responses=AccessRequestOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """As patient: requests made to me; as doctor: requests I made. Newest first."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=AccessRequestIn, responses={201: AccessRequestOut})
    def post(self, request: Request) -> Response:
        """As an active doctor: ask a patient for a consent (scope, purpose, optional expiry, reason)."""
        data = AccessRequestIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        created = access_requests.request_access(
            doctor=signed_in_user(request),
            patient_address=fields["patient"],
            scope=fields["scope"],
            purpose=fields["purpose"],
            expires_at=fields.get("expires_at"),
            reason=fields["reason"],
        )
        return Response(AccessRequestOut(created).data, status=status.HTTP_201_CREATED)


class AccessRequestDetailView(APIView):
    @extend_schema(responses=AccessRequestOut)
    def get(self, request: Request, request_id: str) -> Response:
        found = get_object_or_404(access_requests.requests_visible_to(signed_in_user(request)), pk=request_id)
        return Response(AccessRequestOut(found).data)


class AccessRequestTypedDataView(APIView):
    @extend_schema(request=NarrowingIn, responses={200: OpenApiResponse(description="EIP-712 Grant payload")})
    def post(self, request: Request, request_id: str) -> Response:
        """As patient: the Grant my wallet signs to approve, with the (possibly narrower) terms I choose."""
        data = NarrowingIn(data=request.data)
        data.is_valid(raise_exception=True)
        payload = access_requests.prepare_approval(
            patient=signed_in_user(request),
            request_id=request_id,
            scope=data.validated_data.get("scope"),
            expires_at=data.validated_data.get("expires_at"),
        )
        return Response(payload)


class AccessRequestApproveView(APIView):
    @extend_schema(request=ApproveIn, responses={202: AccessRequestOut})
    def post(self, request: Request, request_id: str) -> Response:
        """As patient: approve by signing a grant (wallet signature or managed-key password); the consent is
        queued for the chain (202). Narrower scope or earlier expiry allowed; wider is 400."""
        data = ApproveIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        approved = access_requests.approve_access_request(
            patient=signed_in_user(request),
            request_id=request_id,
            password=fields.get("password"),
            typed_data=fields.get("typed_data"),
            signature=fields.get("signature"),
            scope=fields.get("scope"),
            expires_at=fields.get("expires_at"),
        )
        return Response(AccessRequestOut(approved).data, status=status.HTTP_202_ACCEPTED)


class AccessRequestDeclineView(APIView):
    @extend_schema(request=DeclineIn, responses=AccessRequestOut)
    def post(self, request: Request, request_id: str) -> Response:
        """As patient: decline a pending request."""
        data = DeclineIn(data=request.data)
        data.is_valid(raise_exception=True)
        declined = access_requests.decline_access_request(
            patient=signed_in_user(request), request_id=request_id, note=data.validated_data["note"]
        )
        return Response(AccessRequestOut(declined).data)
