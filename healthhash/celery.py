"""The Celery application; tasks live in each app's tasks.py and stay thin (they call services)."""

from __future__ import annotations

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthhash.settings")
# `sqla+...` broker URLs (the embedded broker) use the project's fix of kombu's SQLAlchemy transport.
TRANSPORT_ALIASES["sqla"] = "healthhash.broker:Transport"

app = Celery("healthhash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
