"""Three contexts, a package each: identity (who is who), consent (the one consent rule) and audit (the
access log and break-glass). Models and migrations are shared by the app."""

from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Chain events reach this app through handlers it registers with the indexer
        # (contracts/ imports no app).
        from access.audit import anchoring
        from access.consent import chain_handlers as consent_handlers
        from access.identity import chain_handlers as identity_handlers
        from access.identity import keys as identity_keys

        identity_handlers.register()
        identity_keys.register_sealed_columns()  # managed keys rotate with `rotate_kek`
        consent_handlers.register()
        anchoring.register_handlers()
