"""The Celery application; tasks live in each app's tasks.py and stay thin (they call services)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthhash.settings")

app = Celery("healthhash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
