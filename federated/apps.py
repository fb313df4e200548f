"""Federated training over consented records (next issue); empty for now."""

from __future__ import annotations

from django.apps import AppConfig


class FederatedConfig(AppConfig):
    name = "federated"
    default_auto_field = "django.db.models.BigAutoField"
