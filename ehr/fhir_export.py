"""FHIR shaping for export: the patient's chart as one Bundle and consents as FHIR Consent resources.

Validation and the record-side helpers live in ehr/fhir.py; this module only builds what leaves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ehr.fhir import FhirValidationError, reference_to, validate_resource


def chart_bundle(
    resources: Iterable[Mapping[str, Any]], *, bundle_id: str | None = None, timestamp: str | None = None
) -> dict[str, Any]:
    """A validated collection Bundle of a chart for export.

    Each entry gets ``fullUrl`` ``urn:uuid:<uuid5 of Type/id>`` (stable across exports), and
    references between the exported resources are rewritten to those fullUrls, so the bundle
    resolves on its own.
    """
    resources = [dict(r) for r in resources]
    full_urls: dict[str, str] = {}
    for resource in resources:
        full_urls.setdefault(_local_ref(resource), _full_url(resource))
    entries = [
        {"fullUrl": _full_url(resource), "resource": _rewrite_refs(resource, full_urls)}
        for resource in resources
    ]
    bundle = {
        "resourceType": "Bundle",
        "id": bundle_id or str(uuid.uuid4()),
        "type": "collection",
        "timestamp": timestamp or datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": entries,
    }
    return validate_resource(bundle).data


_EXPORT_NAMESPACE = uuid.UUID("5b1f2a54-6d1e-4b8e-9a4c-4c1d8e3f2a10")


def _local_ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _full_url(resource: Mapping[str, Any]) -> str:
    if resource.get("id") is None:
        return f"urn:uuid:{uuid.uuid4()}"
    return f"urn:uuid:{uuid.uuid5(_EXPORT_NAMESPACE, _local_ref(resource))}"


def _rewrite_refs(value: Any, full_urls: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: (
                full_urls.get(item, item)
                if key == "reference" and isinstance(item, str)
                else _rewrite_refs(item, full_urls)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite_refs(item, full_urls) for item in value]
    return value


# Why a record could not be exported -> (OperationOutcome issue type, what the patient is told).
_BROKEN_RECORD = {
    "tampered": ("processing", "its stored bytes failed the integrity check and were not exported"),
    "missing": ("not-found", "its stored bytes are missing from the record store"),
}


def broken_record_outcome(*, record_id: str, reason: str, detail: str) -> dict[str, Any]:
    """A validated OperationOutcome that stands in a chart export for a record that could not be read.

    ``reason`` is the API error code (``tampered`` or ``missing``) and travels as the issue's
    ``details`` coding (system ``urn:healthhash:error``); the record id is in the resource id, the
    text and ``diagnostics`` (``detail``, a path-free sentence), so the patient can ask about it.
    """
    issue_type, text = _BROKEN_RECORD[reason]
    resource = {
        "resourceType": "OperationOutcome",
        "id": f"broken-{record_id}",
        "issue": [
            {
                "severity": "error",
                "code": issue_type,
                "details": {
                    "coding": [{"system": "urn:healthhash:error", "code": reason}],
                    "text": f"record {record_id}: {text}",
                },
                "diagnostics": detail,
            }
        ],
    }
    return validate_resource(resource).data


_CONSENT_STATUS = {
    "active": "active",
    "granted": "active",
    "revoked": "inactive",
    "expired": "inactive",
    "inactive": "inactive",
    "pending": "proposed",
    "requested": "proposed",
    "proposed": "proposed",
    "rejected": "rejected",
    "denied": "rejected",
    "draft": "draft",
    "entered-in-error": "entered-in-error",
}
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# purpose -> (Consent.scope code, provision.purpose code in v3-ActReason)
_PURPOSES = {"TREATMENT": ("treatment", "TREAT"), "TRAINING": ("research", "HRESCH")}


def consent_resource(
    *,
    patient_ref: str,
    grantee_ref: str,
    scope: str,
    purpose: str,
    status: str,
    period_end: str | None,
    consent_id: str,
) -> dict[str, Any]:
    """A validated FHIR R4 Consent for export of one HealthHash consent.

    ``scope`` is the on-chain scope string (``chart``, ``category:<name>``, ``record:<uuid>``);
    it becomes ``provision.code`` (system ``urn:healthhash:scope``) and, for a record, a
    ``provision.data`` instance reference by identifier. ``purpose`` TREATMENT or TRAINING maps
    to Consent.scope treatment/research and provision.purpose TREAT/HRESCH. ``status`` takes
    HealthHash words (active, revoked, expired, pending, rejected) or FHIR codes. A bytes32
    ``consent_id`` loses its ``0x`` (FHIR ids are at most 64 characters) and is kept whole in
    ``identifier``.
    """
    fhir_status = _CONSENT_STATUS.get(status.lower())
    if fhir_status is None:
        raise FhirValidationError("Consent.status", f"{status!r} is not a consent status")
    scope_code, reason_code = _PURPOSES.get(purpose.upper(), (None, None))
    if scope_code is None:
        raise FhirValidationError("Consent.provision.purpose", f"{purpose!r} is not TREATMENT or TRAINING")
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [
            {
                "role": _concept(
                    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "IRCP",
                    "information recipient",
                ),
                "reference": reference_to(grantee_ref),
            }
        ],
        "purpose": [{"system": _ACT_REASON, "code": reason_code}],
        "code": [{"coding": [{"system": "urn:healthhash:scope", "code": scope}]}],
    }
    if period_end is not None:
        provision["period"] = {"end": period_end}
    if scope.startswith("record:"):
        record = {"identifier": {"system": "urn:healthhash:record", "value": scope.removeprefix("record:")}}
        provision["data"] = [{"meaning": "instance", "reference": record}]
    resource = {
        "resourceType": "Consent",
        "id": consent_id.removeprefix("0x") if len(consent_id) > 64 else consent_id,
        "identifier": [{"system": "urn:healthhash:consent-id", "value": consent_id}],
        "status": fhir_status,
        "scope": _concept("http://terminology.hl7.org/CodeSystem/consentscope", scope_code),
        "category": [_concept("http://loinc.org", "59284-0", "Patient Consent")],
        "patient": reference_to(patient_ref),
        "performer": [reference_to(patient_ref)],
        "policyRule": _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN"),
        "provision": provision,
    }
    return validate_resource(resource).data


def _concept(system: str, code: str | None, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


# --------------------------------------------------------------------------- pydantic errors -> FHIR paths
