"""Health records: FHIR handling, envelope encryption, IPFS-compatible storage, the record API."""
from __future__ import annotations

from django.apps import AppConfig


class EhrConfig(AppConfig):
    name = "ehr"
    default_auto_field = "django.db.models.BigAutoField"
