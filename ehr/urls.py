"""The record API's routes, mounted under /api/ by healthhash/urls.py."""

from __future__ import annotations

from django.urls import path

from ehr.api import views

urlpatterns = [
    path("records", views.RecordListCreateView.as_view(), name="records"),
    path("records/import", views.RecordImportView.as_view(), name="records-import"),
    path("records/<uuid:record_id>", views.RecordDetailView.as_view(), name="record-detail"),
    path("records/<uuid:record_id>/content", views.RecordContentView.as_view(), name="record-content"),
    path("patients/me/export", views.ChartExportView.as_view(), name="chart-export"),
]
