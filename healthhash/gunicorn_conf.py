"""gunicorn's configuration for HealthHash: `gunicorn -c python:healthhash.gunicorn_conf --bind HOST:PORT`
(what `manage.py serve` runs). Its values come from healthhash/settings.py.

Worker class gthread, not sync: a request mostly waits (the database's write lock, the record store, an
RPC), and threads wait together within one process; sync workers also have no keep-alive and are held
by a slow client for as long as it takes, so they need a buffering proxy in front. Not preloaded: each
worker imports the app itself, so a worker killed and replaced by the master comes back whole.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

# Settings only (no app is loaded in the master): the workers load the app, see above.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthhash.settings")

wsgi_app = "healthhash.wsgi:application"
worker_class = "gthread"
workers = settings.WEB_CONCURRENCY
threads = settings.WEB_THREADS
# A worker that answers nothing for this long is killed and replaced (record uploads are the longest).
timeout = 60
# On SIGTERM, requests in flight get this long to finish.
graceful_timeout = 10
keepalive = 5
# Every request leaves one line from healthhash.request_id (with its id); gunicorn's access lines are off
# (LOGGING sets their logger to WARNING), as they would repeat it without the id.
errorlog = "-"
# The master's lines in the format of the app's (LOG_FORMAT).
logconfig_dict = settings.LOGGING
# No control socket: its default path is per user, not per server, so two servers on one machine clash.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Import every view before the first request, not during it (the first answer took seconds)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
