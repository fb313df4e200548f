"""URL routing: each app mounts its API under /api/; OpenAPI at /api/schema/, health at /api/health.

Every API path answers with and without a trailing slash (the API guard, healthhash/middleware.py, routes
the other spelling), and any other path under /api/ is a JSON 404 in the error shape.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from healthhash.health import HealthView
from healthhash.portal import portal_index

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/", include("access.urls")),
    path("api/", include("ehr.urls")),
    path("api/", include("federated.urls")),
    # Last: every other path is a route of the web portal (its built files are served by WhiteNoise).
    re_path(r"^(?!api(?:/|$))(?P<path>.*)$", portal_index, name="portal"),
]
