"""Routes of the consent API."""

from __future__ import annotations

from django.urls import path

from access.consent.api import patient_views
from access.consent.api import views as consent_views

urlpatterns = [
    path("consents", consent_views.ConsentListCreateView.as_view(), name="consents"),
    path("consents/batch", consent_views.ConsentBatchView.as_view(), name="consent-batch"),
    path("consents/typed-data", consent_views.ConsentTypedDataView.as_view(), name="consent-typed-data"),
    path("consents/check", consent_views.ConsentCheckView.as_view(), name="consent-check"),
    path("consents/<uuid:consent_id>", consent_views.ConsentDetailView.as_view(), name="consent-detail"),
    path(
        "consents/<uuid:consent_id>/revoke", consent_views.ConsentRevokeView.as_view(), name="consent-revoke"
    ),
    path(
        "consents/<uuid:consent_id>/revoke/typed-data",
        consent_views.ConsentRevokeTypedDataView.as_view(),
        name="consent-revoke-typed-data",
    ),
    path("patients", patient_views.PatientListView.as_view(), name="patients"),
]
