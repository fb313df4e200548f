"""The federated app's API under /api/: the hospital workers' endpoints (training/worker/...) and the
people's (jobs, model versions, predictions, training use)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("training/worker/", include("federated.worker_api")),
    path("", include("federated.api.urls")),
]
