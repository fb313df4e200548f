"""The on-chain layer: contracts, the JSON-RPC client, the outbox + relayer and the event indexer."""

from __future__ import annotations

from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contracts import relayer

        relayer.register()  # re-orgs put the relayer's orphaned transactions back in flight
