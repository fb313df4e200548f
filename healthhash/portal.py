"""The web portal's HTML at every non-API path: the single-page app built by Vite into frontend/dist.

WhiteNoise serves the built files themselves (hashed assets under /assets/, cached for good); any other
GET outside /api/ is a route of the app, so it gets index.html, which must never be cached (it names the
current assets). A path under /assets/ that is not a file is a 404, not the page, so a stale asset name
fails as a missing file rather than as HTML parsed as JavaScript. Before `make setup` has built the
portal, the page says how to build it.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from whitenoise.middleware import WhiteNoiseMiddleware

# The app loads only its own files and talks only to its own origin: no CDN, no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
NOT_BUILT = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>HealthHash</title>"
    "<p>The web portal is not built yet: run <code>make setup</code>. The API is at /api/.</p></html>"
)


class PortalFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, quiet about a folder that is not there: the project collects no static files (no
    admin, no browsable API), and before a build there is no frontend/dist; the index view says so."""

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if self.autorefresh or os.path.isdir(root):
            super().add_files(root, prefix)


def portal_index(request: HttpRequest, path: str = "") -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if path.startswith("assets/"):
        return HttpResponseNotFound("No such file.", content_type="text/plain; charset=utf-8")
    index = settings.PORTAL_DIST_DIR / "index.html"
    try:
        body, status = index.read_bytes(), 200
    except FileNotFoundError:
        body, status = NOT_BUILT.encode(), 503
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "same-origin"
    return response
