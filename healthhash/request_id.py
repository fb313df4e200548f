"""Every request gets an id: the client's `X-Request-ID` when it is a plain token, else a fresh one. It is
on every log line written while serving the request (healthhash/logs.py) and on the response, so a
client's report and the server's lines meet; with `LOG_REQUESTS` each request also ends in one line
(method, path without the query string, status, milliseconds)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from healthhash.logs import request_id_var

HEADER = "X-Request-ID"
# A proxy's id is kept when it cannot smuggle anything into a log line or a header.
_ACCEPTED = re.compile(r"[A-Za-z0-9._-]{1,64}")

log = logging.getLogger("healthhash.requests")


def _request_id(request: HttpRequest) -> str:
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    return given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE, so that every line of the request, and every answer, carries the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.log_requests: bool = settings.LOG_REQUESTS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id(request)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            if self.log_requests:
                log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)
