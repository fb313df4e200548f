"""The embedded Celery broker: kombu's SQLAlchemy transport over one SQLite file, made fit for several
consumers (the server worker and one hospital worker per queue) on one machine.

kombu's `sqla` transport hands every transport option to `create_engine`, so the one option every virtual
transport reads, `polling_interval`, makes it fail (TypeError: a worker that cannot start); and its SQLite
engine waits only 5 s for a lock and writes a rollback journal. This subclass takes `polling_interval` for
itself and opens the file in WAL mode with a 30 s busy timeout, so readers never block the writer.
healthhash/celery.py registers it under the `sqla` alias, so `sqla+sqlite:///...` URLs use it.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy
from sqlalchemy import create_engine, event

BUSY_TIMEOUT_S = 30
# Options kombu's Channel reads itself (they are no create_engine arguments).
_KOMBU_OPTIONS = (
    "polling_interval",
    "queue_tablename",
    "message_tablename",
    "callback",
    "errback",
    "max_retries",
    "interval_start",
    "interval_step",
    "interval_max",
    "retry_errors",
)


class Channel(sqlalchemy.Channel):
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        assert conninfo is not None  # a channel belongs to an open connection
        given = conninfo.transport_options or {}
        options = {k: v for k, v in given.items() if k not in _KOMBU_OPTIONS}
        url = str(conninfo.hostname)
        if not url.startswith("sqlite"):
            return create_engine(url, **options)
        options.setdefault("connect_args", {}).setdefault("timeout", BUSY_TIMEOUT_S)
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine


class Transport(sqlalchemy.Transport):
    Channel = Channel
