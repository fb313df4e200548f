"""Limit/offset pagination that refuses what it cannot honour instead of guessing.

DRF's LimitOffsetPagination falls back to the default page on `?limit=abc` and passes any integer on to
the database (`?limit=10**30` fails there with a 500). Here a limit or offset that is not a plain
non-negative integer in range is a 400 naming the parameter.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 500
# Far beyond any row count, and offset + limit still fits the 64-bit integers databases use.
MAX_OFFSET = 2**62
_DIGITS = re.compile(r"[0-9]{1,19}")


def _bounded_int(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise ValidationError({name: [f"{name} must be an integer from {minimum} to {maximum}"]})
    return int(raw)


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        limit = _bounded_int(request, self.limit_query_param, minimum=1, maximum=MAX_LIMIT)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        offset = _bounded_int(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)
        return offset or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": MAX_LIMIT},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
