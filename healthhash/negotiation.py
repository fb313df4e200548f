"""Content negotiation whose unknown `?format=` is a 400 naming the parameter, not DRF's bare 404.

DRF answers a `format` no renderer of the view offers with Http404 ("Not found."), which tells a client
that the resource is missing when only the parameter is wrong (and is a status the schema cannot
foresee). Here it is 400 `bad_format` with `field: "format"` and the formats that would do.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    def filter_renderers(self, renderers: Iterable[BaseRenderer], format: str) -> list[BaseRenderer]:
        offered = list(renderers)
        found = [renderer for renderer in offered if renderer.format == format]
        if not found:
            from healthhash.errors import DomainError  # healthhash.errors imports DRF, which loads this class

            known = ", ".join(sorted({str(renderer.format) for renderer in offered}))
            raise DomainError(
                f"Unknown format {format[:40]!r}; this endpoint offers: {known}.",
                field="format",
                code="bad_format",
            )
        return found
