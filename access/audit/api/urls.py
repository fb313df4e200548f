"""Routes of the access log, break-glass and access-request APIs."""

from __future__ import annotations

from django.urls import path

from access.audit.api import breakglass_views, proof_views
from access.audit.api import views as audit_views
from access.consent.api import request_views

urlpatterns = [
    path("patients/me/access-log", audit_views.AccessLogView.as_view(), name="my-access-log"),
    path(
        "patients/me/access-log/proof", proof_views.AccessLogProofView.as_view(), name="my-access-log-proof"
    ),
    path("patients/me/break-glass", breakglass_views.MyBreakGlassView.as_view(), name="my-break-glass"),
    path("break-glass", breakglass_views.BreakGlassView.as_view(), name="break-glass"),
    path("break-glass/reviews", breakglass_views.ReviewQueueView.as_view(), name="break-glass-reviews"),
    path(
        "break-glass/<uuid:break_glass_id>/review",
        breakglass_views.ReviewView.as_view(),
        name="break-glass-review",
    ),
    path("access-requests", request_views.AccessRequestListView.as_view(), name="access-requests"),
    path(
        "access-requests/<uuid:request_id>",
        request_views.AccessRequestDetailView.as_view(),
        name="access-request",
    ),
    path(
        "access-requests/<uuid:request_id>/typed-data",
        request_views.AccessRequestTypedDataView.as_view(),
        name="access-request-typed-data",
    ),
    path(
        "access-requests/<uuid:request_id>/approve",
        request_views.AccessRequestApproveView.as_view(),
        name="access-request-approve",
    ),
    path(
        "access-requests/<uuid:request_id>/decline",
        request_views.AccessRequestDeclineView.as_view(),
        name="access-request-decline",
    ),
]
