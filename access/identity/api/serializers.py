"""Input and output shapes of identities: me, sign-up, tokens, and the hospital and doctor directory
(lists, details with their Directory status, and the admins' writes)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from access.identity.directory_status import DirectoryStatus, doctor_status, hospital_status
from access.models import Doctor, Hospital, User
from healthhash.eth_address import EthAddressField
from healthhash.query import QuerySerializer


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
    password = serializers.CharField(
        max_length=256,
        required=False,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Required unless this session signed in within the last API_TOKEN_FRESH_SIGN_IN_S "
        "seconds; always required when the request itself carries a token.",
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Shorter than the default, which is also the maximum."
    )

    def validate_expires_in_days(self, value: int) -> int:
        # Read per request, not at import: the maximum is a setting.
        if value > settings.API_TOKEN_TTL_DAYS:
            raise serializers.ValidationError(f"at most {settings.API_TOKEN_TTL_DAYS} days")
        return value


class TokenOut(serializers.Serializer):
    """A token as its owner may see it again: never the secret, only its first characters."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    key_prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="The token itself; shown this once, only its hash is kept.")


class DoctorListQuery(QuerySerializer):
    hospital = serializers.SlugField(required=False, help_text="Only doctors of the hospital with this slug.")


# --------------------------------------------------------------------------- sign-up and Directory writes

USERNAME_RE = r"^[\w.@+-]+\Z"
# Wallet users signing in by SIWE get their lower-cased address as username: nobody may take one first.
ADDRESS_LIKE_RE = re.compile(r"^0x[0-9a-f]{40}$", re.IGNORECASE)


class UsernameField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("help_text", "Letters, digits and @ . + - _ only.")
        super().__init__(USERNAME_RE, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if ADDRESS_LIKE_RE.match(value):
            raise serializers.ValidationError("a username must not look like an Ethereum address")
        return value


def _password_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=256, trim_whitespace=False, style={"input_type": "password"}, write_only=True, **kwargs
    )


class SignupIn(serializers.Serializer):
    """Either `username` + `password` (a managed key is created) or a signed SIWE `message` + `signature`."""

    username = UsernameField(required=False)
    password = _password_field(required=False)
    email = serializers.EmailField(required=False, default="")
    message = serializers.CharField(max_length=4096, trim_whitespace=False, required=False)
    signature = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "message" in attrs or "signature" in attrs:
            for name in ("message", "signature"):
                if name not in attrs:
                    raise serializers.ValidationError({name: "required with a Sign-In with Ethereum message"})
            if "username" in attrs or "password" in attrs:
                raise serializers.ValidationError(
                    {"message": "send either username and password, or a SIWE message, not both"}
                )
            return attrs
        for name in ("username", "password"):
            if not attrs.get(name):
                raise serializers.ValidationError({name: "This field is required."}, code="required")
        return attrs


class AdminPasswordIn(serializers.Serializer):
    password = _password_field(
        help_text="The acting admin's password: it unlocks the key that signs the action."
    )


class HospitalCreateIn(AdminPasswordIn):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    admin_username = UsernameField(
        help_text="The hospital's admin: a new user, or an existing hospital admin."
    )
    admin_password = _password_field(
        required=False,
        help_text="Creates the admin as a new user with this password; omit for an existing one.",
    )


class DoctorCreateIn(AdminPasswordIn):
    username = UsernameField()
    doctor_password = _password_field(
        required=False, help_text="The doctor's password; without eth_address it also creates a managed key."
    )
    eth_address = EthAddressField(required=False, help_text="The doctor's own wallet address.")
    email = serializers.EmailField(required=False, default="")
    hospital = serializers.SlugField(required=False, help_text="Defaults to the admin's own hospital.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("doctor_password") and not attrs.get("eth_address"):
            raise serializers.ValidationError(
                {"doctor_password": "give the doctor a password or their wallet address (eth_address)"},
                code="required",
            )
        return attrs


class DirectoryActionOut(serializers.Serializer):
    """The signed Directory action relayed for an entry (an outbox item)."""

    id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, sent, confirmed or failed")
    error_code = serializers.CharField()
    created_at = serializers.DateTimeField()


class HospitalDetailOut(HospitalSerializer):
    admin_username = serializers.CharField(source="admin.username", read_only=True)
    status = serializers.SerializerMethodField(help_text="pending, active, failed or inactive")
    action = serializers.SerializerMethodField()

    class Meta(HospitalSerializer.Meta):
        fields = [*HospitalSerializer.Meta.fields, "admin_username", "status", "action"]
        read_only_fields = fields

    def get_status(self, hospital: Hospital) -> str:
        return self._status_of(hospital).status

    @extend_schema_field(DirectoryActionOut(allow_null=True))
    def get_action(self, hospital: Hospital) -> dict | None:
        action = self._status_of(hospital).action
        return DirectoryActionOut(action).data if action is not None else None

    def _status_of(self, hospital: Hospital) -> DirectoryStatus:
        # Both fields come from one look-up of the outbox.
        if getattr(self, "_status_for", None) != hospital.pk:
            self._status_for, self._status = hospital.pk, hospital_status(hospital)
        return self._status


class DoctorDetailOut(DoctorSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    status = serializers.SerializerMethodField(help_text="pending, active, failed or inactive")
    action = serializers.SerializerMethodField()

    class Meta(DoctorSerializer.Meta):
        fields = [*DoctorSerializer.Meta.fields, "username", "status", "action"]
        read_only_fields = fields

    def get_status(self, doctor: Doctor) -> str:
        return self._status_of(doctor).status

    @extend_schema_field(DirectoryActionOut(allow_null=True))
    def get_action(self, doctor: Doctor) -> dict | None:
        action = self._status_of(doctor).action
        return DirectoryActionOut(action).data if action is not None else None

    def _status_of(self, doctor: Doctor) -> DirectoryStatus:
        # Both fields come from one look-up of the outbox.
        if getattr(self, "_status_for", None) != doctor.pk:
            self._status_for, self._status = doctor.pk, doctor_status(doctor)
        return self._status
