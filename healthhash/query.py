"""Query-string serializers: a parameter sent empty (`?patient=`) is a value to validate, not an absent one.

DRF reads form-style input (a QueryDict) leniently: an empty value of an optional field counts as
"not sent", so `?patient=` would list every patient's records instead of answering 400. Reading the
query as a plain dict makes an empty value go through the field's own validation (blank, choice,
integer) like any other.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import empty


class QuerySerializer(serializers.Serializer):
    def __init__(self, instance: Any = None, data: Any = empty, **kwargs: Any) -> None:
        if isinstance(data, QueryDict):
            data = data.dict()
        super().__init__(instance, data, **kwargs)
