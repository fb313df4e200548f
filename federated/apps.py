"""Federated training over consented records (issue 14): jobs, plan approvals on chain, rounds."""

from __future__ import annotations

from django.apps import AppConfig


class FederatedConfig(AppConfig):
    name = "federated"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # TrainingRegistry events reach this app through handlers it registers with the indexer
        # (contracts/ imports no app).
        from federated import chain_handlers

        chain_handlers.register()
