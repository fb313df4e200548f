"""Access-log API: the patient reads (paginated JSON) and exports (CSV, FHIR Bundle) their own log."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from access.audit import selectors as audit_selectors
from access.audit.api.serializers import AccessLogEntryOut, AccessLogQuery
from access.audit.export import access_log_csv, access_log_fhir_bundle
from access.identity.users import signed_in_user
from access.models import AccessLogEntry
from healthhash.pagination import StrictLimitOffsetPagination


class _DownloadRenderer(BaseRenderer):
    """Lets `?format=csv|fhir` pass DRF's content negotiation; the view builds the body itself."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        # Only errors reach here (downloads are built by the view): keep the JSON error shape.
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class CsvRenderer(_DownloadRenderer):
    media_type, format, charset = "text/csv", "csv", "utf-8"


class FhirJsonRenderer(_DownloadRenderer):
    media_type, format, charset = "application/fhir+json", "fhir", "utf-8"


class AccessLogView(ListAPIView):
    serializer_class = AccessLogEntryOut
    renderer_classes = [JSONRenderer, CsvRenderer, FhirJsonRenderer]

    def get_queryset(self) -> QuerySet[AccessLogEntry]:
        query = AccessLogQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        entries = audit_selectors.access_log_of(patient=signed_in_user(self.request))
        if query.validated_data.get("action"):
            entries = entries.filter(action=query.validated_data["action"])
        return entries

    def get_serializer_context(self) -> dict[str, Any]:
        anchored_up_to = audit_selectors.anchored_up_to(patient=signed_in_user(self.request))
        return {**super().get_serializer_context(), "anchored_up_to": anchored_up_to}

    @extend_schema(
        parameters=[AccessLogQuery],
        responses={
            (200, "application/json"): AccessLogEntryOut(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="Accounting of disclosures (CSV)"
            ),
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="FHIR Bundle of AuditEvent"
            ),
        },
    )
    # The stub narrows ListAPIView.get to Response; DRF finalizes any HttpResponse (the downloads).
    def get(  # type: ignore[override]
        self, request: Request, *args: object, **kwargs: object
    ) -> Response | HttpResponse:
        """My access log, newest first: who opened, listed, exported or was denied what, when, why, and
        on what legal basis. `?format=csv` or `?format=fhir` downloads all of it."""
        export = request.query_params.get("format")
        if export not in ("csv", "fhir"):
            return super().get(request, *args, **kwargs)
        # A download is the whole log, but paging parameters it ignores must still be valid ones.
        paginator = StrictLimitOffsetPagination()
        paginator.get_limit(request)
        paginator.get_offset(request)
        entries = list(self.get_queryset().order_by("seq"))
        if export == "csv":
            response = HttpResponse(access_log_csv(entries), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="access-log.csv"'
            return response
        return JsonResponse(access_log_fhir_bundle(entries), content_type="application/fhir+json")
