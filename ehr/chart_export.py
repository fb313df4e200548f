"""A patient's whole chart as one FHIR collection Bundle: every record, decrypted and verified the way
`open_record` does for the owner, plus their consents as FHIR Consent resources; one "export" entry in
the access log.

A record whose bytes are altered or gone does not sink the export: it is replaced by an OperationOutcome
naming the record and the reason, and `read_verified` logs it (a "tamper" entry for altered bytes, an
"open" entry with outcome "error" for missing ones). A store that cannot be read at all is still a 503.
"""

from __future__ import annotations

import base64
from typing import Any

from access.audit import log as audit
from access.models import AccessAction, Consent, Purpose, User
from ehr import fhir_export
from ehr.models import Record
from ehr.record_selectors import records_visible_to
from ehr.records import AccessDecision, Tampered, read_verified
from ehr.store import StoredBytesMissing

_OWNER = AccessDecision.owner()
# HealthHash consent states that FHIR's Consent.status has no word for.
_CONSENT_STATUS = {"superseded": "inactive", "failed": "rejected"}


def export_chart(*, patient: User) -> dict[str, Any]:
    """The chart Bundle. Files travel inline (attachment.data) so the export stands on its own."""
    records = list(records_visible_to(patient).filter(patient=patient).order_by("created_at"))
    audit.log_decision(
        _OWNER,
        patient_address=patient.eth_address,
        actor=patient,
        action=AccessAction.EXPORT,
        detail={"records": len(records)},
    )
    readable: list[tuple[Record, dict[str, Any]]] = []
    broken: list[dict[str, Any]] = []
    for record in records:
        try:
            readable.append((record, _resource(record, patient)))
        except (Tampered, StoredBytesMissing) as exc:
            broken.append(
                fhir_export.broken_record_outcome(
                    record_id=str(record.id), reason=exc.code, detail=exc.detail
                )
            )
    resources = [resource for _record, resource in readable]
    _dedupe_ids(resources, [record for record, _resource in readable])
    resources.extend(broken)
    resources.extend(
        _consent(consent) for consent in Consent.objects.filter(patient=patient).order_by("created_at")
    )
    return fhir_export.chart_bundle(resources)


def _resource(record: Record, patient: User) -> dict[str, Any]:
    content = read_verified(record, actor=patient, decision=_OWNER)
    resource = dict(content.resource)
    if content.file_bytes is not None:
        attachment = dict(resource["content"][0]["attachment"])
        attachment["data"] = base64.b64encode(content.file_bytes).decode("ascii")
        attachment.pop("url", None)
        resource["content"] = [{**resource["content"][0], "attachment": attachment}]
    return resource


def _dedupe_ids(resources: list[dict[str, Any]], records: list[Record]) -> None:
    """Two imports of the same source carry the same ids; later copies take their record id instead."""
    seen: set[tuple[str, str]] = set()
    for resource, record in zip(resources, records, strict=True):
        key = (resource.get("resourceType", ""), str(resource.get("id")))
        if key in seen:
            resource["id"] = str(record.id)
        seen.add((resource.get("resourceType", ""), str(resource.get("id"))))


def _consent(consent: Consent) -> dict[str, Any]:
    status = consent.effective_status
    return fhir_export.consent_resource(
        patient_ref=consent.patient_address,
        grantee_ref=consent.grantee_address,
        # A chain-only grant of an unknown record scope is known by its hash alone.
        scope=consent.scope or f"scope-hash:{consent.scope_hash}",
        purpose=Purpose(consent.purpose).label,
        status=_CONSENT_STATUS.get(status, status),
        period_end=consent.expires_at.isoformat() if consent.expires_at else None,
        consent_id=str(consent.id),
    )
