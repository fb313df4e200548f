"""The on-chain layer: contracts, the JSON-RPC client, the outbox + relayer and the event indexer."""

from __future__ import annotations

from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    default_auto_field = "django.db.models.BigAutoField"
