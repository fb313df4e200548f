"""The API's outer guard: every answer under /api/ is JSON in the one error shape, whatever failed.

It runs before anything reads the body, so it also refuses oversized bodies by their Content-Length
(413) and bodies of unknown length (411) without reading them, and it lets every API path be called
with or without a trailing slash. Django's own error pages (the debug page, the 404 page, the 400 of a
suspicious request) never reach an API client: they are replaced by the error shape, keeping the
status; the traceback stays in the server log, where Django already wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from healthhash.errors import error_body

API_PREFIX = "/api/"

# What a client reads when Django (not a view) produced the error; views answer with their own detail.
_DETAILS = {
    400: ("bad_request", "The request could not be read."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "No API endpoint or object matches this path."),
    405: ("method_not_allowed", "This endpoint does not answer this method."),
    411: ("length_required", "Send the body with a Content-Length header (chunked bodies are refused)."),
    413: ("too_large", "The request body is over the limit."),
    500: ("server_error", "The server failed to answer; the error is logged."),
}


def _media_type(response: HttpResponse) -> str:
    return response.get("Content-Type", "").split(";")[0].strip().lower()


def _holds_error_shape(response: HttpResponse) -> bool:
    if response.streaming:
        return False
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and set(body) == {"error", "detail", "field"}


def _error(status: int, detail: str | None = None) -> JsonResponse:
    code, default_detail = _DETAILS.get(status, (HTTPStatus(status).phrase.lower().replace(" ", "_"), ""))
    return JsonResponse(
        error_body(code, detail or default_detail or HTTPStatus(status).phrase), status=status
    )


def _refuse_body(request: HttpRequest) -> JsonResponse | None:
    """413 by Content-Length, before a byte is read; 411 for a body of unknown length."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        return _error(411) if chunked else None
    try:
        length = int(declared)
    except ValueError:
        return _error(400, "Content-Length is not a number.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        return _error(413, f"The request body is {length} bytes; the limit is {limit} bytes.")
    return None


def _match_trailing_slash(request: HttpRequest) -> None:
    """Route `/api/x/` to `/api/x` (and the reverse) when only the other spelling is a route."""
    path = request.path_info
    try:
        resolve(path)
        return
    except Resolver404:
        pass
    other = path[:-1] if path.endswith("/") else path + "/"
    try:
        resolve(other)
    except Resolver404:
        return
    request.path_info = other
    request.path = request.path[: len(request.path) - len(path)] + other


class ApiGuardMiddleware:
    """Place right after SecurityMiddleware, before anything that may read the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not (request.path_info.startswith(API_PREFIX) or request.path_info == API_PREFIX.rstrip("/")):
            return self.get_response(request)
        refused = _refuse_body(request)
        if refused is not None:
            return refused
        _match_trailing_slash(request)
        response = self.get_response(request)
        if response.status_code < 400 or _media_type(response) == "application/json":
            return response
        if _holds_error_shape(response):
            # A view's own error, rendered by a download renderer (CSV, FHIR, file bytes): label it JSON.
            response["Content-Type"] = "application/json"
            return response
        if _media_type(response).endswith("+json"):
            return response  # a JSON error of another shape (FHIR OperationOutcome): the view meant it
        replaced = _error(response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replaced[header] = response[header]
        return replaced
