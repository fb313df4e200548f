"""OpenAPI generation: every operation lists the error answers it can give, in the one error shape.

A view declares its success response and, where it wants to explain them, its errors; this AutoSchema
adds the statuses the framework itself gives (bad input, not signed in, refused, no such object, body
too large, throttled, a dependency down) so clients and schema fuzzers know every answer to expect.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

_BODY_METHODS = {"POST", "PUT", "PATCH"}
_UNSAFE_METHODS = _BODY_METHODS | {"DELETE"}


class ApiError(serializers.Serializer):
    """The one error shape of the API: {"error": code, "detail": message, "field": path or null}."""

    error = serializers.CharField(help_text="Stable code for programs, e.g. not_found, too_large.")
    detail = serializers.CharField(help_text="Message for people.")
    field = serializers.CharField(allow_null=True, help_text="The input field at fault, if one is.")


class ErrorShapeAutoSchema(AutoSchema):
    def _error_statuses(self) -> dict[int, str]:
        """The error statuses this operation can answer, with what each means here."""
        statuses: dict[int, str] = {}
        has_query = any(p.get("in") == "query" for p in self._get_parameters())
        if self.method in _BODY_METHODS or has_query:
            statuses[400] = "Invalid input: `field` names the parameter or body field at fault."
        if self.view.authentication_classes:
            statuses[401] = "Not signed in (no session, or an unknown or revoked token)."
        if self.view.authentication_classes or self.method in _UNSAFE_METHODS:
            statuses[403] = "Not allowed for this user (role, consent or CSRF token)."
        if "{" in self.path or getattr(self.view, "names_objects_in_body", False):
            statuses[404] = "No such object, or not one this user may know of."
        if self.method in _UNSAFE_METHODS:
            statuses[409] = "Conflicts with the current state."
        if self.method in _BODY_METHODS:
            statuses[413] = "The body is over the size limit."
            statuses[415] = "The body's Content-Type is not one this endpoint reads."
        if self.view.throttle_classes:
            statuses[429] = "Too many attempts; retry after the Retry-After seconds."
        statuses[503] = "A service it needs (chain node, record store, key ring) does not answer."
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error_ref = self.resolve_serializer(ApiError, "response").ref
        for status_code, description in self._error_statuses().items():
            response = responses.setdefault(str(status_code), {"description": description})
            response.setdefault("content", {"application/json": {"schema": error_ref}})
        for code, response in responses.items():
            # Errors a view declared with a description only also come in the error shape.
            if code >= "400" and "content" not in response:
                response["content"] = {"application/json": {"schema": error_ref}}
        return responses
