"""Serializers of the access-request API."""

from __future__ import annotations

from rest_framework import serializers

from access.consent.api.serializers import ConsentOut, SignedOrPasswordIn
from access.consent.scopes import CATEGORIES
from access.models import AccessRequest, Purpose, RequestStatus
from healthhash.eth_address import EthAddressField
from healthhash.query import QuerySerializer


class AccessRequestIn(serializers.Serializer):
    patient = EthAddressField(help_text="The patient's Ethereum address.")
    scope = serializers.CharField(
        help_text=f'"chart", "category:<name>" ({", ".join(CATEGORIES)}) or "record:<uuid>"'
    )
    purpose = serializers.ChoiceField(choices=Purpose.names)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField()


class NarrowingIn(serializers.Serializer):
    scope = serializers.CharField(required=False, help_text="Same or narrower than requested.")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Same or earlier than requested."
    )


class ApproveIn(NarrowingIn, SignedOrPasswordIn):
    """Either {typed_data, signature} from a wallet (terms are in the signed Grant), or {password}."""


class DeclineIn(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class AccessRequestQuery(QuerySerializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False)


class AccessRequestOut(serializers.ModelSerializer):
    purpose = serializers.SerializerMethodField()
    doctor = serializers.SerializerMethodField()
    hospital = serializers.CharField(source="hospital.slug")
    consent = ConsentOut(allow_null=True)

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "doctor",
            "hospital",
            "patient_address",
            "scope",
            "purpose",
            "expires_at",
            "reason",
            "status",
            "created_at",
            "decided_at",
            "decline_note",
            "granted_scope",
            "granted_expires_at",
            "consent",
        ]

    def get_purpose(self, request: AccessRequest) -> str:
        return Purpose(request.purpose).label

    def get_doctor(self, request: AccessRequest) -> dict[str, str | None]:
        return {
            "username": request.doctor.username,
            "name": request.doctor.display_name,
            "address": request.doctor.eth_address,
        }
