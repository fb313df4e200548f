"""Identities, roles, hospitals and doctors, consent and its indexed history."""

from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Chain events reach this app through handlers it registers with the indexer
        # (contracts/ imports no app).
        from access import chain_handlers

        chain_handlers.register()
