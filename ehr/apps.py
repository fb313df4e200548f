"""Health records: FHIR handling, envelope encryption, IPFS-compatible storage, the record API."""

from __future__ import annotations

import uuid

from django.apps import AppConfig


def _record_belongs_to(patient_address: str, record_id: uuid.UUID) -> bool:
    """access.consent.scopes asks this before a patient may sign a consent for one record."""
    from ehr.models import Record

    return Record.objects.filter(pk=record_id, patient_address__iexact=patient_address).exists()


def _record_category(record_id: uuid.UUID) -> str | None:
    """access.consent.requests asks this to tell whether a record lies within a requested category."""
    from ehr.models import Record

    return Record.objects.filter(pk=record_id).values_list("category", flat=True).first()


def _record_ids_of(patient_addresses: list[str]) -> list[tuple[str, uuid.UUID]]:
    """access.consent.replay asks this to give record scopes seen only as hashes their text back."""
    from ehr.models import Record

    rows = Record.objects.filter(patient_address__in=patient_addresses).values_list("patient_address", "pk")
    return [(patient, record_id) for patient, record_id in rows]


class EhrConfig(AppConfig):
    name = "ehr"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # access and contracts must not import ehr, so ehr plugs itself in here.
        from access.audit.companions import register_companion_check
        from access.consent.replay import register_record_ids_source
        from access.consent.requests import register_record_category_lookup
        from access.consent.scopes import register_record_owner_check
        from ehr import anchor_handlers, anchor_verify
        from ehr import keys as record_keys

        register_record_owner_check(_record_belongs_to)
        register_record_ids_source(_record_ids_of)
        record_keys.register_sealed_columns()  # record data keys rotate with `rotate_kek`
        register_record_category_lookup(_record_category)
        anchor_handlers.register()
        # verify_audit checks the record roots on chain too (access may not import ehr).
        register_companion_check("records", anchor_verify.companion_check)
