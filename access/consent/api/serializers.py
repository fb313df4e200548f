"""Serializers of the consent API: input shapes and the consent as clients see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from access.consent.scopes import CATEGORIES
from access.models import Consent, Purpose
from healthhash.eth_address import EthAddressField
from healthhash.query import QuerySerializer


class ConsentOut(serializers.ModelSerializer):
    status = serializers.CharField(source="effective_status")
    purpose = serializers.SerializerMethodField()
    grantee = serializers.SerializerMethodField()
    revocation_pending = serializers.BooleanField()
    grant_outbox_status = serializers.CharField(source="grant_outbox.status", default=None)

    class Meta:
        model = Consent
        fields = [
            "id",
            "consent_key",
            "patient_address",
            "grantee_address",
            "grantee",
            "scope",
            "purpose",
            "expires_at",
            "version",
            "status",
            "failure_reason",
            "grant_tx_hash",
            "granted_block",
            "granted_at",
            "grant_outbox_status",
            "revocation_pending",
            "revoke_failure_reason",
            "revoke_tx_hash",
            "ended_block",
            "ended_at",
            "created_at",
        ]

    def get_purpose(self, consent: Consent) -> str:
        return Purpose(consent.purpose).label

    def get_grantee(self, consent: Consent) -> dict[str, str | None]:
        hospital = consent.grantee_hospital
        return {
            "kind": "doctor" if consent.grantee_user_id else "hospital",
            "name": consent.grantee_user.display_name
            if consent.grantee_user
            else (hospital.name if hospital else None),
            "hospital": hospital.slug if hospital else None,
        }


class TypedDataRequest(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["grant"],
        default="grant",
        help_text="Always grant: a revoke's payload is POST /api/consents/{id}/revoke/typed-data.",
    )
    grantee = EthAddressField(required=False, help_text="Doctor's or hospital's address (grant).")
    scope = serializers.CharField(
        required=False,
        help_text=f'"chart", "category:<name>" ({", ".join(CATEGORIES)}) or "record:<uuid>" (grant).',
    )
    purpose = serializers.ChoiceField(choices=Purpose.names, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("action") == "revoke":
            raise serializers.ValidationError(
                {
                    "action": "this endpoint prepares grants only; a revoke's payload is "
                    "POST /api/consents/{id}/revoke/typed-data"
                }
            )
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        for name in ("grantee", "scope", "purpose"):
            if attrs.get(name) in (None, ""):
                raise serializers.ValidationError({name: f"{name} is required to grant"})
        return attrs


class TypedDataOut(serializers.Serializer):
    """An EIP-712 payload, to be passed to eth_signTypedData_v4 exactly as received and sent back signed."""

    domain = serializers.DictField(help_text="name, version, chainId, verifyingContract (ConsentRegistry).")
    types = serializers.DictField(help_text="EIP712Domain and the primary type's members.")
    primaryType = serializers.CharField(help_text='"Grant" or "Revoke".')  # EIP-712's spelling
    message = serializers.DictField(help_text="The members of the primary type, nonce and deadline included.")


class SignedPayloadIn(serializers.Serializer):
    typed_data = serializers.DictField(required=False, help_text="The EIP-712 payload exactly as signed.")
    signature = serializers.CharField(required=False, help_text="0x-hex, 65 bytes (eth_signTypedData_v4).")


class GrantIn(SignedPayloadIn):
    """Either {typed_data, signature} from a wallet, or the terms plus the password of a managed key."""

    grantee = EthAddressField(required=False)
    scope = serializers.CharField(required=False)
    purpose = serializers.ChoiceField(choices=Purpose.names, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        if "signature" in attrs or "typed_data" in attrs:
            for name in ("typed_data", "signature"):
                if name not in attrs:
                    raise serializers.ValidationError({name: f"{name} is required with a signed payload"})
            return attrs
        for name in ("grantee", "scope", "purpose", "password"):
            if attrs.get(name) in (None, ""):
                raise serializers.ValidationError(
                    {name: f"{name} is required (or send typed_data and signature from your wallet)"}
                )
        return attrs


class SignedOrPasswordIn(SignedPayloadIn):
    """Either {typed_data, signature} from a wallet, or {password} for the server to sign with the
    managed key (revoking a consent, approving an access request)."""

    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "signature" in attrs or "typed_data" in attrs:
            for name in ("typed_data", "signature"):
                if name not in attrs:
                    raise serializers.ValidationError({name: f"{name} is required with a signed payload"})
        elif not attrs.get("password"):
            raise serializers.ValidationError({"password": "send typed_data and signature, or your password"})
        return attrs


class RevokeIn(SignedOrPasswordIn):
    pass


class ConsentListQuery(QuerySerializer):
    status = serializers.ChoiceField(
        choices=["pending", "active", "revoked", "expired", "failed", "superseded"], required=False
    )
    grantee = serializers.CharField(required=False)
    purpose = serializers.ChoiceField(choices=Purpose.names, required=False)


class CheckQuery(QuerySerializer):
    patient = EthAddressField()
    grantee = EthAddressField()
    record = serializers.UUIDField(required=False)
    category = serializers.ChoiceField(choices=CATEGORIES, required=False)
    purpose = serializers.ChoiceField(choices=Purpose.names)
    # A block number is a 64-bit integer on every node; the view also refuses one past the head.
    at_block = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)


class CheckOut(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    consent_id = serializers.UUIDField(allow_null=True)
    granted_block = serializers.IntegerField(allow_null=True)
    at_block = serializers.IntegerField(allow_null=True)


class SignedGrantIn(serializers.Serializer):
    typed_data = serializers.DictField(help_text="The EIP-712 Grant exactly as signed.")
    signature = serializers.CharField(help_text="0x-hex, 65 bytes (eth_signTypedData_v4).")


class GrantBatchIn(serializers.Serializer):
    # What many=True builds; spelled out because the stub of Serializer() lacks max_length.
    grants: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=SignedGrantIn(), allow_empty=False, max_length=100
    )


class GrantBatchResultOut(serializers.Serializer):
    consent = ConsentOut(allow_null=True)
    error = serializers.DictField(
        allow_null=True, help_text='{"error", "detail", "field"} for a refused item'
    )


class GrantBatchOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = GrantBatchResultOut(many=True)
