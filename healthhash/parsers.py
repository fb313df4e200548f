"""The API's JSON body parser: DRF's, with a bound on the bytes it reads and on how deep the JSON nests.

ApiGuardMiddleware already refuses a body whose Content-Length is over DATA_UPLOAD_MAX_MEMORY_SIZE;
the parser repeats the bound on what it actually reads, so no other path to the stream can hold more.
Nesting beyond JSON_MAX_DEPTH is refused (400) right after parsing: Python's decoder itself gives up
near the interpreter's recursion limit with a RecursionError, and anything that later walks a value
that deep (validation, canonical encoding) would do the same.
"""

from __future__ import annotations

import codecs
import json
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

# DRF exceptions, not healthhash.errors.DomainError: DRF imports this module while healthhash.errors is
# still importing DRF. The exception handler gives them the same error shape.


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class TooDeep(ParseError):
    default_code = "too_deep"


def _read_bounded(stream: IO[bytes]) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise BodyTooLarge(f"The request body is over the limit of {limit} bytes.")
    return data


def nesting_depth(value: Any, *, limit: int) -> int:
    """How many arrays/objects deep the value goes, counted up to `limit` + 1 and no further.

    Level by level, without recursion (a deep value cannot overflow the stack); about 2 s for a
    40 MB Bundle on a busy 2-core machine, microseconds for the usual body.
    """
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level and depth <= limit:
        depth += 1
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) is dict or type(child) is list]
        level = below
    return depth


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = _read_bounded(stream)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=self._refuse_constant)
        except RecursionError:
            raise TooDeep(self._too_deep_detail()) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if nesting_depth(data, limit=settings.JSON_MAX_DEPTH) > settings.JSON_MAX_DEPTH:
            raise TooDeep(self._too_deep_detail())
        return data

    @staticmethod
    def _refuse_constant(name: str) -> Any:
        # NaN and Infinity are not JSON (DRF's STRICT_JSON default refuses them too).
        raise ValueError(f"{name} is not valid JSON")

    @staticmethod
    def _too_deep_detail() -> str:
        return f"JSON nests deeper than {settings.JSON_MAX_DEPTH} levels."
