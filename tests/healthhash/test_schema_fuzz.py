"""Schema fuzzing: schemathesis drives every operation of /api/schema/ with a patient's and a doctor's
API token against the real app (in-process WSGI, real database and chain): no server error, and every
answer is one the schema declares (status, content type, body).

Bounded: a fixed number of examples per operation and generation mode, derandomized (the same cases on
every run), no shrinking. SCHEMA_FUZZ_EXAMPLES raises the count for a longer local hunt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from access.identity import services as identity_services
from access.models import ApiToken
from tests.conftest import Personas

EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI app inside the test's transaction: like Django's test client, requests must not
    close the connection (that would end the transaction the test's rows live in)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _fuzz_operation(operation: Any, mode: GenerationMode, tokens: dict[str, int]) -> None:
    # /api/health answers 503 by design when a component is down, and here one is: its checks run on
    # connections of their own, which do not see this test's uncommitted deployments. Its answers are
    # still checked against the schema.
    checks = [c for c in CHECKS if c is not not_a_server_error] if operation.path == "/api/health" else CHECKS

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        for plaintext in tokens:
            # The fuzzer may revoke the token it is using (DELETE /api/auth/tokens/{id}); keep both live.
            ApiToken.objects.filter(pk__in=tokens.values()).update(revoked_at=None)
            case.call_and_validate(headers={"Authorization": f"Token {plaintext}"}, checks=checks)

    run()


def test_fuzzed_requests_get_no_server_error_and_only_declared_answers(
    personas: Personas, wsgi_app: WSGIHandler
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    tokens = {}
    for user in (personas.alice, personas.bob):
        token, plaintext = identity_services.create_api_token(user=user, name="schemathesis")
        tokens[plaintext] = token.pk
    failures: list[str] = []
    started = time.monotonic()
    results = list(schema.get_all_operations())
    assert not [result.err() for result in results if isinstance(result, Err)]
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, tokens)
            except Unsatisfiable:
                # No invalid input to generate: the operation takes no parameters and no body.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collect all findings, then fail once
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    elapsed = time.monotonic() - started
    assert len(operations) >= 30, [op.label for op in operations]
    assert not failures, f"{len(failures)} findings in {elapsed:.0f} s:\n\n" + "\n\n".join(failures)
