"""Consent API: thin views over access.consent.services (writes) and access.consent.selectors (reads)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.consent import selectors as consent_selectors
from access.consent import services as consent_services
from access.consent.api.serializers import (
    CheckOut,
    CheckQuery,
    ConsentListQuery,
    ConsentOut,
    GrantBatchIn,
    GrantBatchOut,
    GrantIn,
    RevokeIn,
    TypedDataOut,
    TypedDataRequest,
)
from access.identity.users import signed_in_user
from access.models import Consent, Purpose
from contracts import client
from healthhash.errors import DomainError, Forbidden, error_body


def _visible_consent(request: Request, consent_id: str) -> Consent:
    queryset = consent_selectors.consents_visible_to(signed_in_user(request)).select_related(
        "grantee_user", "grantee_hospital", "grant_outbox"
    )
    return get_object_or_404(queryset, pk=consent_id)


class ConsentTypedDataView(APIView):
    @extend_schema(request=TypedDataRequest, responses={200: OpenApiResponse(description="EIP-712 payload")})
    def post(self, request: Request) -> Response:
        """The exact EIP-712 Grant payload (domain, types, primaryType, message) for eth_signTypedData_v4.
        A Revoke's comes from the consent's own door, POST /api/consents/{id}/revoke/typed-data."""
        data = TypedDataRequest(data=request.data)
        data.is_valid(raise_exception=True)
        terms = data.validated_data
        payload = consent_services.prepare_grant(
            patient=signed_in_user(request),
            grantee=terms["grantee"],
            scope=terms["scope"],
            purpose=terms["purpose"],
            expires_at=terms.get("expires_at"),
        )
        return Response(payload)


class ConsentListCreateView(ListAPIView):
    serializer_class = ConsentOut

    def get_queryset(self) -> QuerySet[Consent]:
        query = ConsentListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        purpose = query.validated_data.get("purpose")
        return consent_selectors.filter_consents(
            consent_selectors.consents_visible_to(signed_in_user(self.request)),
            status=query.validated_data.get("status"),
            grantee=query.validated_data.get("grantee"),
            purpose=Purpose[purpose].value if purpose else None,
        ).select_related("grantee_user", "grantee_hospital", "grant_outbox")

    @extend_schema(parameters=[ConsentListQuery], responses=ConsentOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """As patient: the consents I gave; as doctor or hospital admin: those I (or my hospital) hold."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=GrantIn, responses={202: ConsentOut})
    def post(self, request: Request) -> Response:
        """Grant: a wallet-signed Grant, or the terms plus the password of a managed key.

        Accepted grants are queued for the chain (202, status pending) even when the node is down.
        """
        data = GrantIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "signature" in fields:
            consent = consent_services.submit_signed_grant(
                patient=signed_in_user(request),
                typed_data=fields["typed_data"],
                signature=fields["signature"],
            )
        else:
            consent = consent_services.grant_with_managed_key(
                patient=signed_in_user(request),
                password=fields["password"],
                grantee=fields["grantee"],
                scope=fields["scope"],
                purpose=fields["purpose"],
                expires_at=fields.get("expires_at"),
            )
        return Response(ConsentOut(consent).data, status=status.HTTP_202_ACCEPTED)


class ConsentBatchView(APIView):
    @extend_schema(request=GrantBatchIn, responses={200: GrantBatchOut})
    def post(self, request: Request) -> Response:
        """Several wallet-signed grants at once (e.g. a whole care team); each item is checked as a single
        grant would be, refused items come back with their error in place, the rest are queued (202 each)."""
        patient = signed_in_user(request)
        consent_services.require_patient(patient)
        data = GrantBatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        results = consent_services.submit_signed_grants(
            grants=[
                consent_services.SignedGrant(patient, item["typed_data"], item["signature"])
                for item in data.validated_data["grants"]
            ]
        )
        body = [
            {"consent": None, "error": error_body(r.code, r.detail, r.field)}
            if isinstance(r, DomainError)
            else {"consent": ConsentOut(r).data, "error": None}
            for r in results
        ]
        refused = sum(1 for r in results if isinstance(r, DomainError))
        return Response({"accepted": len(results) - refused, "refused": refused, "results": body})


class ConsentDetailView(APIView):
    @extend_schema(responses=ConsentOut)
    def get(self, request: Request, consent_id: str) -> Response:
        return Response(ConsentOut(_visible_consent(request, consent_id)).data)


class ConsentRevokeView(APIView):
    @extend_schema(request=RevokeIn, responses={202: ConsentOut})
    def post(self, request: Request, consent_id: str) -> Response:
        """Revoke: a wallet-signed Revoke, or the password of a managed key. Queued for the chain (202)."""
        consent = _visible_consent(request, consent_id)
        data = RevokeIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "signature" in fields:
            consent = consent_services.submit_signed_revoke(
                patient=signed_in_user(request),
                consent=consent,
                typed_data=fields["typed_data"],
                signature=fields["signature"],
            )
        else:
            consent = consent_services.revoke_with_managed_key(
                patient=signed_in_user(request), consent=consent, password=fields["password"]
            )
        return Response(ConsentOut(consent).data, status=status.HTTP_202_ACCEPTED)


class ConsentRevokeTypedDataView(APIView):
    @extend_schema(request=None, responses={200: TypedDataOut})
    def post(self, request: Request, consent_id: str) -> Response:
        """The EIP-712 Revoke of this consent for the patient's wallet to sign (eth_signTypedData_v4), then
        to send back to /revoke as {typed_data, signature}. Refused as /revoke would refuse it."""
        consent = _visible_consent(request, consent_id)
        payload = consent_services.prepare_revoke(patient=signed_in_user(request), consent=consent)
        return Response(TypedDataOut(payload).data)


def _mined_block(at_block: int | None) -> int | None:
    """`at_block` if the node has mined it: past the head is a 400, a node that does not answer a 503."""
    if at_block is None:
        return None
    head = client.latest_block()  # ChainUnavailable (503) when the node is down
    if at_block > head:
        detail = f"at_block {at_block} is past the chain head (block {head})"
        raise DomainError(detail, field="at_block", code="future_block")
    return at_block


class ConsentCheckView(APIView):
    @extend_schema(parameters=[CheckQuery], responses=CheckOut)
    def get(self, request: Request) -> Response:
        """May the grantee use the record/category of the patient for the purpose, now or as of a block?"""
        query = CheckQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        terms = query.validated_data
        patient, grantee = terms["patient"], terms["grantee"]
        if not consent_selectors.may_ask_about(
            signed_in_user(request), patient_address=patient, grantee_address=grantee
        ):
            raise Forbidden("only the patient, the grantee, its hospital's admin or the consortium may ask")
        decision = consent_selectors.is_allowed(
            patient_address=patient,
            grantee_address=grantee,
            purpose=Purpose[terms["purpose"]].value,
            record_id=terms.get("record"),
            category=terms.get("category"),
            at_block=_mined_block(terms.get("at_block")),
        )
        body = {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "consent_id": decision.consent_id,
            "granted_block": decision.granted_block,
            "at_block": terms.get("at_block"),
        }
        return Response(CheckOut(body).data)
