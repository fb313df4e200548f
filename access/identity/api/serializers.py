"""Output shapes of identities shared by several views (me, the hospital and doctor directory)."""

from __future__ import annotations

from rest_framework import serializers

from access.models import Doctor, Hospital, User


class HospitalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hospital
        fields = ["slug", "name", "hospital_id", "account_address", "active"]
        read_only_fields = fields


class HospitalRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hospital
        fields = ["slug", "name", "hospital_id"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    hospital = HospitalSerializer(allow_null=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "role", "eth_address", "key_kind", "hospital"]
        read_only_fields = fields


class DoctorSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="user.display_name", read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    eth_address = serializers.CharField(source="user.eth_address", read_only=True)
    hospital = HospitalRefSerializer(read_only=True)

    class Meta:
        model = Doctor
        fields = ["id", "user_id", "name", "eth_address", "hospital", "active"]
        read_only_fields = fields


class ErrorOut(serializers.Serializer):
    """The one error shape of the API (healthhash.errors), for the OpenAPI schema."""

    error = serializers.CharField()
    detail = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class CsrfOut(serializers.Serializer):
    csrf_token = serializers.CharField()


class LoginIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class SiweNonceOut(serializers.Serializer):
    nonce = serializers.CharField()
    domain = serializers.CharField()
    chain_id = serializers.IntegerField()
    uri = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class SiweVerifyIn(serializers.Serializer):
    message = serializers.CharField(max_length=4096, trim_whitespace=False)
    signature = serializers.CharField(max_length=200)


class TokenCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    key_prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="The token itself; shown this once, only its hash is kept.")


class DoctorListQuery(serializers.Serializer):
    hospital = serializers.SlugField(required=False, help_text="Only doctors of the hospital with this slug.")
