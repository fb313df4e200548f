"""The web portal's HTML at every non-API path: the single-page app built by Vite into frontend/dist.

WhiteNoise serves the built files themselves (hashed assets under /assets/, cached for good); any other
GET outside /api/ is a route of the app, so it gets index.html, which must never be cached (it names the
current assets). A path under /assets/ that is not a file is a 404, not the page, so a stale asset name
fails as a missing file rather than as HTML parsed as JavaScript. Before `make setup` has built the
portal, the page says how to build it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from whitenoise.middleware import WhiteNoiseMiddleware

# The app loads only its own files and talks only to its own origin (and to the public JSON-RPC node, see
# content_security_policy): no CDN, no inline script.
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


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def public_rpc_url() -> str:
    """The chain's JSON-RPC URL that browsers may read from ("" when none is published): the access log's
    Verify reads the Anchors contract there itself. ETH_PUBLIC_RPC_URL when set; else the node in use
    (ETH_RPC_URL, or the dev chain's port as in contracts.client.rpc_url) only when it is on this machine,
    without credentials: a remote ETH_RPC_URL may carry an API key, so it is never published by default."""
    if settings.ETH_PUBLIC_RPC_URL:
        return str(settings.ETH_PUBLIC_RPC_URL)
    url = settings.ETH_RPC_URL or f"http://127.0.0.1:{settings.DEV_CHAIN_PORT}"
    parts = urlsplit(url)
    if parts.hostname in _LOOPBACK_HOSTS and not (parts.username or parts.password):
        return str(url)
    return ""


def content_security_policy() -> str:
    """CONTENT_SECURITY_POLICY, with the public JSON-RPC node's origin added to connect-src."""
    parts = urlsplit(public_rpc_url())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return CONTENT_SECURITY_POLICY
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


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
    response["Content-Security-Policy"] = content_security_policy()
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "same-origin"
    return response
