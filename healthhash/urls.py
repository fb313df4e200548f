"""URL routing: each app mounts its API under /api/; OpenAPI at /api/schema/."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("access.urls")),
    path("api/", include("ehr.urls")),
]
