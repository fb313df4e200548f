"""Exports of a patient's access log as an accounting of disclosures: CSV, and a FHIR R4 Bundle of
AuditEvents (validated with fhir.resources.R4B; access may not import ehr, so the builder lives here).

Both are built from each entry's canonical bytes, the content its hash commits to, not from the
query columns.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from access.models import AccessAction, AccessLogEntry, AccessOutcome, AccessPurpose, LegalBasis

CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_role",
    "actor_address",
    "action",
    "purpose",
    "outcome",
    "legal_basis",
    "record_id",
    "reason",
    "entry_hash",
)
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_FHIR_ACTION = {
    AccessAction.OPEN: "R",
    AccessAction.DENY: "R",
    AccessAction.LIST: "R",
    AccessAction.EXPORT: "R",
    AccessAction.CREATE: "C",
    AccessAction.BREAK_GLASS: "E",
    AccessAction.TAMPER: "R",
}
_FHIR_OUTCOME = {AccessOutcome.ALLOWED: "0", AccessOutcome.DENIED: "4", AccessOutcome.ERROR: "8"}
_PURPOSE_CODES = {
    AccessPurpose.TREATMENT: ("TREAT", "treatment"),
    AccessPurpose.TRAINING: ("HRESCH", "healthcare research"),
    AccessPurpose.OWNER: ("PATRQT", "patient requested"),
    AccessPurpose.EMERGENCY: ("ETREAT", "Emergency Treatment"),
}


def _content(entry: AccessLogEntry) -> dict[str, Any]:
    return json.loads(bytes(entry.canonical))


def _is_break_glass(legal_basis: str) -> bool:
    try:
        return LegalBasis.parse(legal_basis).is_break_glass
    except ValueError:  # an entry written before the vocabulary was typed; shown as stored
        return False


def access_log_csv(entries: Iterable[AccessLogEntry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for entry in entries:
        content = _content(entry)
        actor = content["actor"] or {}
        writer.writerow(
            {
                "seq": content["seq"],
                "at": content["at"],
                "actor": actor.get("username") or "",
                "actor_role": actor.get("role") or "",
                "actor_address": actor.get("address") or "",
                "action": content["action"],
                "purpose": content["purpose"],
                "outcome": content["outcome"],
                "legal_basis": content["legal_basis"],
                "record_id": content["record"] or "",
                "reason": content["reason"],
                "entry_hash": "0x" + bytes(entry.entry_hash).hex(),
            }
        )
    return out.getvalue()


def audit_event(entry: AccessLogEntry) -> dict[str, Any]:
    """One entry as a FHIR AuditEvent (dict); the id is derived from (patient, seq), so stable."""
    content = _content(entry)
    actor = content["actor"] or {}
    agent: dict[str, Any] = {"requestor": True, "who": {"display": actor.get("username") or "system"}}
    if actor.get("address"):
        agent["who"]["identifier"] = {"system": "urn:ethereum:address", "value": actor["address"]}
    code, display = _PURPOSE_CODES.get(content["purpose"], (content["purpose"], content["purpose"]))
    purposes = [{"coding": [{"system": _ACT_REASON, "code": code, "display": display}]}]
    if content["action"] == AccessAction.BREAK_GLASS or _is_break_glass(content["legal_basis"]):
        purposes.append(
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "BTG",
                        "display": "break the glass",
                    }
                ]
            }
        )
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": {"system": "urn:ethereum:address", "value": content["patient"]}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
        }
    ]
    if content["record"]:
        entities.append(
            {
                "what": {"identifier": {"system": "urn:healthhash:record", "value": content["record"]}},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
            }
        )
    entities.append({"name": "legal_basis", "description": content["legal_basis"]})
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"healthhash:access-log:{content['patient']}:{content['seq']}")
        ),
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        },
        "subtype": [{"system": "urn:healthhash:access-action", "code": content["action"]}],
        "action": _FHIR_ACTION.get(content["action"], "R"),
        "recorded": content["at"],
        "outcome": _FHIR_OUTCOME.get(content["outcome"], "8"),
        "purposeOfEvent": purposes,
        "agent": [agent],
        "source": {"observer": {"display": "HealthHash"}},
        "entity": entities,
    }
    if content["reason"]:
        resource["outcomeDesc"] = content["reason"]
    return resource


def access_log_fhir_bundle(entries: Iterable[AccessLogEntry]) -> dict[str, Any]:
    """A FHIR collection Bundle of AuditEvents, validated as a whole (raises on a structural defect)."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{event['id']}", "resource": event}
            for event in (audit_event(entry) for entry in entries)
        ],
    }
    Bundle.model_validate(bundle)
    return bundle
