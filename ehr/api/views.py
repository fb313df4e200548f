"""Record API views: one per operation, thin over ehr.records, ehr.record_selectors and ehr.chart_export."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.identity.users import signed_in_user
from access.models import Role, User
from ehr import chart_export, record_selectors, records
from ehr.api.listing import log_doctor_listing
from ehr.api.serializers import (
    FhirRecordIn,
    FileRecordIn,
    ImportIn,
    ImportOut,
    OpenedRecordOut,
    RecordListQuery,
    RecordOut,
    RecordPage,
)
from ehr.fhir import ALLOWED_FILE_TYPES
from ehr.models import FHIR_JSON, Record
from ehr.record_content import check_size
from healthhash.errors import DomainError, Forbidden
from healthhash.pagination import StrictLimitOffsetPagination
from healthhash.parsers import JSONParser

_ERRORS = {
    400: OpenApiResponse(
        description="Invalid input: {error, detail, field}; field is the FHIR path for FHIR"
    ),
    403: OpenApiResponse(description="No consent covers it: error is no_consent, expired or revoked"),
    404: OpenApiResponse(description="No such record or patient (or not yours to know of)"),
    409: OpenApiResponse(description="tampered: stored bytes are present but fail their integrity check"),
    410: OpenApiResponse(description="missing: the record's stored bytes are gone from the store"),
    413: OpenApiResponse(description="too_large: over RECORD_MAX_BYTES"),
    415: OpenApiResponse(description="unsupported_media_type: not PDF, PNG, JPEG or DICOM"),
    422: OpenApiResponse(description="not_a_record: valid FHIR that is not a health record (e.g. Patient)"),
    429: OpenApiResponse(description="quota_exceeded: over RECORDS_PER_DAY records created in 24 hours"),
    503: OpenApiResponse(
        description="storage_unavailable (the store cannot be used), storage_read_only or storage_full "
        "(a record cannot be stored; reads still work), or key_unavailable"
    ),
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: _ERRORS[code] for code in codes}


def _target_patient(actor: User, address: str | None) -> User:
    """The chart being written: the given (checksummed) patient address, a doctor writing; else the
    actor's own."""
    if not address:
        if actor.role != Role.PATIENT:
            raise DomainError("patient (the patient's address) is required", field="patient")
        return actor
    patient = User.objects.filter(eth_address=address, role=Role.PATIENT).first()
    if patient is None:
        raise records.UnknownPatient("no patient with this address", field="patient")
    return patient


class RecordListCreateView(APIView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(operation_id="records_list", parameters=[RecordListQuery], responses={200: RecordPage})
    def get(self, request: Request) -> Response:
        """Mine (patient), or the records my consents and live break-glasses cover (doctor). Paginated."""
        query = RecordListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        address = query.validated_data.get("patient")
        user = signed_in_user(request)
        queryset = record_selectors.filter_records(
            record_selectors.records_visible_to(user),
            patient_address=address,
            category=query.validated_data.get("category"),
        ).select_related("created_by")
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        if user.role == Role.DOCTOR:
            log_doctor_listing(user, page)
        return paginator.get_paginated_response(RecordOut(page, many=True).data)

    @extend_schema(
        request={
            "application/json": FhirRecordIn,
            "multipart/form-data": FileRecordIn,
        },
        responses={201: RecordOut, **_errors(400, 403, 404, 413, 415, 422, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        """Add a record: JSON {patient?, resource} with a FHIR resource, or a multipart file upload.

        Patients write to their own chart; a doctor writes for a patient (by address) under an active
        TREATMENT consent for the whole chart or the record's category.
        """
        if "file" in request.FILES or request.content_type.startswith("multipart/"):
            return self._upload(request)
        data = FhirRecordIn(data=request.data)
        data.is_valid(raise_exception=True)
        actor = signed_in_user(request)
        patient = _target_patient(actor, data.validated_data.get("patient"))
        record = records.create_record(actor=actor, patient=patient, resource=data.validated_data["resource"])
        return Response(RecordOut(record).data, status=status.HTTP_201_CREATED)

    def _upload(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is not None:
            check_size(upload.size, what="the file")  # before reading it: nothing stored, 413
        data = FileRecordIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        actor = signed_in_user(request)
        patient = _target_patient(actor, fields.get("patient"))
        record = records.create_file_record(
            actor=actor,
            patient=patient,
            data=fields["file"].read(),
            declared_type=fields["file"].content_type or "",
            title=fields.get("title") or fields["file"].name or "",
            category=fields["category"],
        )
        return Response(RecordOut(record).data, status=status.HTTP_201_CREATED)


class RecordDetailView(APIView):
    @extend_schema(responses={200: OpenedRecordOut, **_errors(403, 404, 409, 410, 503)})
    def get(self, request: Request, record_id: uuid.UUID) -> Response:
        """Metadata plus the decrypted FHIR content (a DocumentReference with a content link for files).

        Opening is logged in the patient's access log, denials too.
        """
        opened = records.open_record(record_id=record_id, actor=signed_in_user(request))
        decision = opened.decision
        return Response(
            {
                "record": RecordOut(opened.record).data,
                "resource": opened.resource,
                "access": {
                    "reason": decision.reason,
                    "purpose": decision.purpose,
                    "legal_basis": decision.legal_basis,
                },
            }
        )


class PassthroughRenderer(BaseRenderer):
    """Lets a client ask for the file's own type; the view sets the real Content-Type itself."""

    media_type = "*/*"
    format = "bin"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")


class RecordContentView(APIView):
    renderer_classes = [JSONRenderer, PassthroughRenderer]

    @extend_schema(
        responses={
            # What the response really carries: FHIR JSON for a FHIR record, the file's own type for a file.
            (200, FHIR_JSON): OpenApiTypes.OBJECT,
            **{(200, media_type): OpenApiTypes.BINARY for media_type in ALLOWED_FILE_TYPES},
            **_errors(403, 404, 409, 410, 503),
        }
    )
    def get(self, request: Request, record_id: uuid.UUID) -> HttpResponse:
        """The record's bytes with their content type: the file, or the FHIR JSON (application/fhir+json)."""
        opened = records.open_record(record_id=record_id, actor=signed_in_user(request))
        record: Record = opened.record
        if opened.file_bytes is None:
            body = json.dumps(opened.resource, ensure_ascii=False).encode("utf-8")
            response = HttpResponse(body, content_type=FHIR_JSON)
        else:
            response = HttpResponse(opened.file_bytes, content_type=record.content_type)
            suffix = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(
                record.content_type, "dcm"
            )
            response["Content-Disposition"] = f'attachment; filename="record-{record.id}.{suffix}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response


class RecordImportView(APIView):
    @extend_schema(request=ImportIn, responses={201: ImportOut, **_errors(400, 403, 404, 413, 429, 503)})
    def post(self, request: Request) -> Response:
        """Import a FHIR transaction or collection Bundle: one record per resource, all or nothing.

        The body is {patient?, bundle} or the Bundle itself. Non-record resources (Patient,
        Practitioner, ...) and entries without a resource (a transaction's DELETE or GET) are skipped
        and listed.
        """
        data = ImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        actor = signed_in_user(request)
        patient = _target_patient(actor, data.validated_data.get("patient"))
        report = records.import_bundle(actor=actor, patient=patient, bundle=data.validated_data["bundle"])
        body = {
            "created": len(report.records),
            "records": RecordOut(report.records, many=True).data,
            "skipped": report.skipped,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ChartExportView(APIView):
    @extend_schema(
        responses={
            (200, FHIR_JSON): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="FHIR collection Bundle of the whole chart; a record whose stored bytes are "
                "altered or missing appears as an OperationOutcome naming it",
            ),
            **_errors(403, 503),
        }
    )
    def get(self, request: Request) -> HttpResponse:
        """My whole chart as one FHIR Bundle: every record decrypted, plus my consents (FHIR Consent).

        Served as application/fhir+json; errors keep the JSON error shape (application/json).
        """
        patient = signed_in_user(request)
        if patient.role != Role.PATIENT or not patient.eth_address:
            raise Forbidden("only a patient exports their own chart", code="not_a_patient")
        bundle = chart_export.export_chart(patient=patient)
        body = json.dumps(bundle, ensure_ascii=False).encode("utf-8")
        response = HttpResponse(body, content_type=FHIR_JSON)
        response["Content-Disposition"] = 'attachment; filename="chart.fhir.json"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response
