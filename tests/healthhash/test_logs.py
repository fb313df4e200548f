"""Log lines: with LOG_FORMAT=json each line is one JSON object (time, level, logger, message, and the
request id while a request is served, the same id the response carries); no secret of the configuration
reaches a line in either format, whoever wrote it and whatever it quoted (a URL, a traceback)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from healthhash import logs

REPO = Path(__file__).resolve().parents[2]
KEK = "k1:c2VjcmV0LWtlay1tdXN0LW5vdC1sZWFrLTAxMjM0NTY="
RELAYER_KEY = "0x" + "ab12" * 16


@pytest.fixture
def secrets(settings: Any) -> Iterator[None]:
    settings.KEY_ENCRYPTION_KEYS = KEK
    settings.RELAYER_PRIVATE_KEY = RELAYER_KEY
    settings.ETH_RPC_URL = "https://node.example/v3/hosted-node-api-key"
    logs._Secrets.forget()
    yield
    logs._Secrets.forget()


def _capture(log_format: str, logger_name: str) -> tuple[logging.Logger, io.StringIO]:
    """`logger_name`'s lines, formatted as LOGGING formats them in `log_format`, into a buffer."""
    config = logs.logging_config(log_format)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = config["formatters"][log_format]
    factory = logs.JsonFormatter if log_format == "json" else logs.PlainFormatter
    handler.setFormatter(factory(formatter.get("format")))
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


@pytest.fixture
def request_lines(settings: Any) -> Iterator[io.StringIO]:
    settings.LOG_REQUESTS = True
    logger, stream = _capture("json", "healthhash.requests")
    yield stream
    logger.handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db
def test_a_request_writes_one_json_line_with_the_id_the_response_carries(request_lines: io.StringIO) -> None:
    response = APIClient().get("/api/me?token=not-in-the-log")
    [line] = _lines(request_lines)
    assert line["request_id"] == response["X-Request-ID"] and len(line["request_id"]) == 32
    assert line["level"] == "INFO" and line["logger"] == "healthhash.requests"
    assert line["message"] == "GET /api/me 401"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/me", 401)
    assert isinstance(line["ms"], float)
    assert datetime.fromisoformat(line["time"]).utcoffset() is not None
    assert "not-in-the-log" not in request_lines.getvalue()


@pytest.mark.django_db
def test_a_plain_client_request_id_is_kept_and_anything_else_replaced(request_lines: io.StringIO) -> None:
    kept = APIClient().get("/api/me", headers={"X-Request-ID": "lb-7f3a.1"})
    replaced = APIClient().get("/api/me", headers={"X-Request-ID": 'x"} {"level": "forged'})
    assert kept["X-Request-ID"] == "lb-7f3a.1"
    assert replaced["X-Request-ID"] != 'x"} {"level": "forged' and len(replaced["X-Request-ID"]) == 32
    assert [line["request_id"] for line in _lines(request_lines)] == ["lb-7f3a.1", replaced["X-Request-ID"]]


def test_outside_a_request_there_is_no_request_id() -> None:
    logger, stream = _capture("json", "tests.outside")
    try:
        logger.info("no request here")
    finally:
        logger.handlers.clear()
    [line] = _lines(stream)
    assert set(line) == {"time", "level", "logger", "message"}


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_no_secret_reaches_a_line_in_either_format(log_format: str, secrets: None, settings: Any) -> None:
    logger, stream = _capture(log_format, f"tests.secrets.{log_format}")
    try:
        logger.warning("relayer %s kek %s", RELAYER_KEY, KEK.split(":")[1])
        logger.warning("key without prefix %s", RELAYER_KEY.removeprefix("0x"))
        logger.warning("broker at redis://:broker-pass@redis.internal:6379/0 and postgres://hh:db-pass@db/hh")
        logger.warning("rpc at %s", settings.ETH_RPC_URL)
        logger.warning("secret key %s", settings.SECRET_KEY)
        try:
            raise RuntimeError(f"failed with {KEK}")
        except RuntimeError:
            logger.exception("a traceback")
    finally:
        logger.handlers.clear()
    written = stream.getvalue()
    for secret in (
        RELAYER_KEY.removeprefix("0x"),
        KEK.split(":")[1],
        "broker-pass",
        "db-pass",
        "hosted-node-api-key",
        settings.SECRET_KEY,
    ):
        assert secret not in written, secret
    assert "redis://[redacted]@redis.internal:6379/0" in written and "RuntimeError" in written
    if log_format == "json":
        assert len(_lines(stream)) == 6  # the traceback stays inside its line


def test_a_process_with_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    """A real management command, its warnings included: every line on stderr is a JSON object."""
    script = (
        "import django, logging, warnings; django.setup(); "
        "logging.getLogger('healthhash.test').info('hello'); warnings.warn('a warning')"
    )
    env = os.environ | {
        "LOG_FORMAT": "json",
        "HEALTHHASH_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "healthhash.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("healthhash.test", "INFO"),
        ("py.warnings", "WARNING"),
    ]
