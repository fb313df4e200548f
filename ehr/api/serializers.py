"""Serializers of the record API: input shapes, record metadata and the opened record as clients see it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from access.consent.scopes import CATEGORIES
from ehr.models import Record
from healthhash.eth_address import EthAddressField
from healthhash.pagination import MAX_LIMIT, MAX_OFFSET
from healthhash.query import QuerySerializer


class RecordOut(serializers.ModelSerializer):
    """Metadata only: what the database knows, never content."""

    anchored = serializers.SerializerMethodField()
    content_url = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Record
        fields = [
            "id",
            "patient_address",
            "category",
            "resource_type",
            "content_type",
            "created_by",
            "created_at",
            "cid",
            "sealed_size",
            "digest",
            "key_id",
            "anchored",
            "anchored_block",
            "content_url",
        ]

    def get_anchored(self, record: Record) -> bool:
        return record.anchored_block is not None and not record.anchor_mismatch

    def get_content_url(self, record: Record) -> str:
        return f"/api/records/{record.id}/content"


class OpenedRecordOut(serializers.Serializer):
    record = RecordOut()
    resource = serializers.JSONField(
        help_text="The decrypted FHIR resource (a DocumentReference for a file)."
    )
    access = serializers.DictField(child=serializers.CharField(), help_text="reason, purpose and legal_basis")


class FhirRecordIn(serializers.Serializer):
    patient = EthAddressField(
        required=False, help_text="Patient's Ethereum address (a doctor writing for a patient); default: me."
    )
    resource = serializers.JSONField(help_text="One FHIR R4 resource (or a document Bundle).")


class FileRecordIn(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="PDF, PNG, JPEG or DICOM.")
    category = serializers.ChoiceField(choices=CATEGORIES, default="document")
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    patient = EthAddressField(required=False, help_text="Patient's address (doctor uploading); default: me.")


class ImportIn(serializers.Serializer):
    patient = EthAddressField(required=False, help_text="Patient's address (doctor importing); default: me.")
    bundle = serializers.JSONField(help_text="A FHIR transaction or collection Bundle.")

    def to_internal_value(self, data: Any) -> Any:
        # A bare Bundle is accepted as the body too: that is what FHIR tools send.
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":
            data = {"bundle": data}
        return super().to_internal_value(data)


class ImportOut(serializers.Serializer):
    created = serializers.IntegerField()
    records = RecordOut(many=True)
    skipped = serializers.ListField(child=serializers.DictField())


class RecordPage(serializers.Serializer):
    """One page of GET /api/records (limit/offset pagination)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RecordOut(many=True)


class RecordListQuery(QuerySerializer):
    patient = EthAddressField(required=False, help_text="Only this patient's records (address).")
    category = serializers.ChoiceField(choices=CATEGORIES, required=False)
    # Documents the parameters; StrictLimitOffsetPagination is what reads and checks them.
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, help_text="Page size (default 50)."
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)
