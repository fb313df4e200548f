"""Serializers of the break-glass API."""

from __future__ import annotations

from rest_framework import serializers

from access.audit.breakglass import MIN_REASON_CHARS
from access.models import BreakGlass, ReviewStatus
from healthhash.eth_address import EthAddressField
from healthhash.query import QuerySerializer


class BreakGlassIn(serializers.Serializer):
    patient = EthAddressField(help_text="The patient's Ethereum address.")
    reason = serializers.CharField(
        min_length=MIN_REASON_CHARS, help_text="Why this is an emergency (required)."
    )


class ReviewIn(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=[ReviewStatus.JUSTIFIED, ReviewStatus.UNJUSTIFIED])
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ReviewQuery(QuerySerializer):
    status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False)


class BreakGlassOut(serializers.ModelSerializer):
    doctor = serializers.SerializerMethodField()
    hospital = serializers.CharField(source="hospital.slug")
    live = serializers.BooleanField(source="is_live")
    reviewed_by = serializers.CharField(source="reviewed_by.username", default=None)

    class Meta:
        model = BreakGlass
        fields = [
            "id",
            "doctor",
            "hospital",
            "patient_address",
            "reason",
            "started_at",
            "expires_at",
            "ended_at",
            "live",
            "review_status",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]

    def get_doctor(self, glass: BreakGlass) -> dict[str, str | None]:
        return {
            "username": glass.doctor.username,
            "name": glass.doctor.display_name,
            "address": glass.doctor.eth_address,
        }
