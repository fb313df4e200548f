"""GET /api/health: is each component this process needs answering? For load balancers, `manage.py serve`
and the tests; no authentication, and cheap enough to poll every few seconds.

Each component of `settings.HEALTH_CHECKS` (database, broker, chain, store; an app owns its component's
check, named there by dotted path so this module imports no app) is asked in its own thread, all at once,
and given `HEALTH_TIMEOUT_S`: the answer comes within about that time even when a component hangs. A check
whose previous run is still hanging is not started again (it answers "down" at once), so a dead component
cannot pile up threads. The answer is 200 when every component is ok, else 503:

    {"status": "ok" | "down",
     "<component>": {"status": "ok" | "down", "detail": "<one short sentence>", "ms": 3.1}, ...}

A detail never holds a URL, a credential or a file path: operators find those in the server log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils.module_loading import import_string
from drf_spectacular.utils import extend_schema
from kombu import Connection
from kombu.exceptions import ChannelError
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

log = logging.getLogger(__name__)

# What a check may take beyond its own timeout before the answer says "no answer".
_GRACE_S = 0.25


@dataclass(frozen=True)
class ComponentHealth:
    status: Literal["ok", "down"]
    detail: str
    ms: float = 0.0

    @classmethod
    def ok(cls, detail: str) -> ComponentHealth:
        return cls("ok", detail)

    @classmethod
    def down(cls, detail: str) -> ComponentHealth:
        return cls("down", detail)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "ms": self.ms}


# A check gets its time budget in seconds and answers for its component; it may raise (that is "down").
Check = Callable[[float], ComponentHealth]

_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def _run_one(name: str, check: Check, timeout_s: float, box: dict[str, ComponentHealth]) -> None:
    started = time.perf_counter()
    try:
        result = check(timeout_s)
    except Exception as exc:
        log.warning("health check %s failed", name, exc_info=True)
        result = ComponentHealth.down(f"check failed ({type(exc).__name__})")
    finally:
        connections.close_all()  # this thread's own connections: a check must not leave one open
    ms = round((time.perf_counter() - started) * 1000, 1)
    box["result"] = ComponentHealth(result.status, result.detail, ms)


def run_checks(checks: Mapping[str, Check], *, timeout_s: float) -> dict[str, ComponentHealth]:
    """Every check in its own thread at once; each answers within `timeout_s` (+ a little) or is down."""
    started: dict[str, tuple[threading.Thread, dict[str, ComponentHealth]]] = {}
    results: dict[str, ComponentHealth] = {}
    for name, check in checks.items():
        box: dict[str, ComponentHealth] = {}
        with _running_lock:
            previous = _running.get(name)
            if previous is not None and previous.is_alive():
                results[name] = ComponentHealth.down("the previous check has not answered yet")
                continue
            thread = threading.Thread(
                target=_run_one, args=(name, check, timeout_s, box), name=f"health-{name}", daemon=True
            )
            _running[name] = thread
        thread.start()
        started[name] = (thread, box)
    deadline = time.monotonic() + timeout_s + _GRACE_S
    for name, (thread, box) in started.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        results[name] = box.get("result") or ComponentHealth.down(f"no answer within {timeout_s:g} s")
    return {name: results[name] for name in checks}


def health_report() -> tuple[bool, dict[str, Any]]:
    """(all ok, the answer's body) for the configured checks."""
    checks = {name: import_string(path) for name, path in settings.HEALTH_CHECKS.items()}
    results = run_checks(checks, timeout_s=settings.HEALTH_TIMEOUT_S)
    healthy = all(result.status == "ok" for result in results.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "down"}
    body.update({name: result.as_dict() for name, result in results.items()})
    return healthy, body


# --- the components this package knows: the database and the broker ----------------------------------


def check_database(timeout_s: float) -> ComponentHealth:
    """One `SELECT 1` on a connection of this thread (closed afterwards)."""
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = %s", [int(timeout_s * 1000)])
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health: database unreachable: %s", exc)
        return ComponentHealth.down(f"{connection.vendor} does not answer ({type(exc).__name__})")
    return ComponentHealth.ok(f"{connection.vendor} answers")


def _broker_transport_options(url: str, timeout_s: float) -> dict[str, Any]:
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}))
    if url.startswith(("redis://", "rediss://")):
        options.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_retries=0)
    return options


def check_broker(timeout_s: float) -> ComponentHealth:
    """Connect to CELERY_BROKER_URL and count the default queue's waiting messages (a passive declare)."""
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0]
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    options = _broker_transport_options(url, timeout_s)
    with Connection(url, connect_timeout=timeout_s, transport_options=options) as connection:
        try:
            connection.ensure_connection(
                max_retries=1,
                interval_start=0,
                interval_step=0,
                interval_max=0,
                timeout=max(1, round(timeout_s)),
            )
            channel: Any = connection.default_channel  # a virtual or amqp channel: both declare queues
            declared = channel.queue_declare(queue=queue, passive=True)
        except ChannelError:
            return ComponentHealth.ok(f"{scheme} answers; no message waiting")
        except Exception as exc:
            # Messages of broker errors name hosts and files: the log has them, the answer does not.
            log.warning("health: broker unreachable: %s", exc)
            return ComponentHealth.down(f"{scheme} does not answer ({type(exc).__name__})")
    return ComponentHealth.ok(f"{scheme} answers; {declared.message_count} messages waiting")


# --- the view ------------------------------------------------------------------------------------------


class ComponentOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "down"])
    detail = serializers.CharField()
    ms = serializers.FloatField(help_text="how long the check took")


class HealthOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "down"], help_text="ok when every component is ok")
    database = ComponentOut()
    broker = ComponentOut()
    chain = ComponentOut(help_text="RPC reachable, chain id, head block, contracts deployed")
    store = ComponentOut(help_text="the record store answers a write, a read and a removal")


class HealthView(APIView):
    """No authentication: a load balancer asks it. A token or session sent along is not even looked at."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(auth=[], responses={200: HealthOut, 503: HealthOut})
    def get(self, request: Request) -> Response:
        """Each component's status: 200 when all are ok, 503 otherwise; answers within about a second."""
        healthy, body = health_report()
        response = Response(body, status=200 if healthy else 503)
        response["Cache-Control"] = "no-store"
        return response
