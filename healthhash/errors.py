"""One error shape for the whole API: {"error": code, "detail": message, "field": name-or-null}.

Services raise `DomainError` subclasses defined next to them; DRF's own exceptions (parse errors,
validation, auth) are mapped to the same shape here, in one exception handler.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.views.debug import SafeExceptionReporterFilter
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A business rule said no. `code` is stable for clients; `detail` is for people."""

    code = "invalid"
    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Forbidden(DomainError):
    code = "forbidden"
    status_code = status.HTTP_403_FORBIDDEN


class Conflict(DomainError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class Unavailable(DomainError):
    code = "unavailable"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def error_body(code: str, detail: str, field: str | None = None) -> dict[str, Any]:
    return {"error": code, "detail": detail, "field": field}


def _first_validation_error(detail: Any, prefix: str = "") -> tuple[str | None, str, str]:
    """Walk DRF's nested error dict/list to the first leaf; return (field path, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_validation_error(value, path)
    if isinstance(detail, list) and detail:
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return prefix or None, str(detail[0]), detail[0].code or "invalid"
        for index, item in enumerate(detail):
            if item:
                return _first_validation_error(item, f"{prefix}[{index}]")
    if isinstance(detail, exceptions.ErrorDetail):
        return prefix or None, str(detail), detail.code or "invalid"
    return prefix or None, str(detail), "invalid"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail, exc.field), status=exc.status_code)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_validation_error(exc.detail)
        response.data = error_body(code, message, field)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        codes = exc.get_codes()
        response.data = error_body(codes if isinstance(codes, str) else exc.default_code, detail)
    return response


class SecretSettingsFilter(SafeExceptionReporterFilter):
    """Masks every secret-bearing setting and environment variable on Django's error reports.

    Django's default masks names with API, AUTH, TOKEN, KEY, SECRET, PASS or SIGNATURE; here also the
    KEK and the URLs that can carry credentials (database, cache, Celery broker, chain node RPC).
    The same pattern cleans request.META, which holds the process environment under runserver.
    """

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|KEK|DATABASE|CACHE|BROKER|RPC|DSN|CREDENTIAL",
        flags=re.IGNORECASE,
    )
