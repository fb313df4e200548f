"""HealthHash project package: settings, URL routing, the Celery app and WSGI/ASGI entry points."""

from __future__ import annotations

from healthhash.celery import app as celery_app

__all__ = ["celery_app"]
