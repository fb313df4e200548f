"""Log lines as the processes write them: plain text for a person (the demo, the tests), or JSON lines for
a log pipeline (`LOG_FORMAT=json`, the default of `manage.py serve`).

A JSON line is one object: `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, then
`request_id` when the line was written while serving a request (see healthhash/request_id.py), any
`extra` fields the caller gave (e.g. `method`, `path`, `status`, `ms` on a request line), and `exc` with
the traceback. Both formats pass every line through `redact`: credentials in URLs and the values of the
configured secrets (Django's secret key, the relayer key, the KEKs, the database password, an RPC URL's
key-bearing path) never reach a log line, whoever wrote it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any

# The request being served by this thread (or task), set by RequestIdMiddleware.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REDACTED = "[redacted]"
# scheme://user:password@host -> scheme://[redacted]@host (also user-only and password-only forms).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@")
# Shorter strings are too common to mask without mangling ordinary text.
_MIN_SECRET_LEN = 8

# What a LogRecord carries by itself: anything else on it came from `extra=` and goes into the JSON.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


def _configured_secrets() -> list[str]:
    """The secret values of the running configuration, longest first; none before settings are loaded."""
    from django.conf import settings

    if not settings.configured:
        return []
    found: list[str] = [settings.SECRET_KEY]
    relayer_key = str(getattr(settings, "RELAYER_PRIVATE_KEY", ""))
    found += [relayer_key, relayer_key.removeprefix("0x")]
    for entry in str(getattr(settings, "KEY_ENCRYPTION_KEYS", "")).split(","):
        found.append(entry.partition(":")[2].strip())
    found += [str(db.get("PASSWORD") or "") for db in settings.DATABASES.values()]
    rpc_url = str(getattr(settings, "ETH_RPC_URL", ""))
    path = rpc_url.split("://", 1)[-1].partition("/")[2]
    found.append(path)  # a hosted node's URL path is often its API key (…/v3/<key>)
    return sorted({s for s in found if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)


class _Secrets:
    """The secret values, read once after settings are configured (a log line must stay cheap)."""

    values: list[str] | None = None

    @classmethod
    def get(cls) -> list[str]:
        if cls.values is None:
            values = _configured_secrets()
            if not values:
                return []  # settings not loaded yet: look again on the next line
            cls.values = values
        return cls.values

    @classmethod
    def forget(cls) -> None:
        """Re-read on the next line (tests change settings)."""
        cls.values = None


def redact(text: str) -> str:
    """`text` without URL credentials and without any configured secret value."""
    text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", text)
    for secret in _Secrets.get():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record, for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class PlainFormatter(logging.Formatter):
    """`time level logger message`, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the dict, and Python warnings as log lines (not bare lines on stderr)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def logging_config(log_format: str, *, level: str = "INFO") -> dict[str, Any]:
    """The `LOGGING` dict (also gunicorn's `logconfig_dict`): every line to stderr, in `log_format`."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be plain or json, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": "healthhash.logs.JsonFormatter"}
        if log_format == "json"
        else {
            "()": "healthhash.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "healthhash.logs.RequestIdFilter"}},
        "formatters": {log_format: formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # kombu warns on every publish to a host-less broker URL (the embedded one); nothing is wrong.
            "kombu.connection": {"level": "ERROR"},
            # Django's default console handler (DEBUG only) would write each of its lines a second time,
            # unformatted; without it they reach the root handler like every other line.
            "django": {"level": "INFO", "handlers": [], "propagate": True},
            # gunicorn's own handlers go too: its lines reach the root handler, in the same format. Its
            # access lines would repeat healthhash.requests' (LOG_REQUESTS) without the request id.
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
