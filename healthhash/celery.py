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
# Beat keeps its schedule, and when each entry last ran, in the database (django-celery-beat), where
# periodic training jobs add theirs: a `worker -B` or `beat` started without `--scheduler` writes no
# `celerybeat-schedule` file into its working directory (Celery's default scheduler would).
app.conf.beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"
app.autodiscover_tasks()
