"""The URL of the database this process is connected to, for a child process that must share it
(a Celery worker in a test, the relayer of a benchmark); it carries credentials, so never log it."""

from __future__ import annotations

from django.db import connection


def current_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
