"""Fixtures for the record tests: a per-test KEK ring, FHIR and file samples, and a `grant` helper that
signs a consent with the patient's managed key and drives it through the real relayer and indexer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from access.consent import services as consent_services
from access.models import Consent, User
from contracts.drain import drain_outbox
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD

# Real files' magic bytes: what sniff_content_type checks.
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))


@pytest.fixture(autouse=True)
def _test_kek(settings: Any) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-test")


def observation(*, code: str = "718-7", value: float = 13.2, category: str = "laboratory") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "Hemoglobin"}]},
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


def condition(text: str = "Hypertension") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": text},
    }


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


Grant = Callable[..., Consent]


@pytest.fixture
def grant(personas: Any) -> Grant:
    """grant(patient, doctor, scope="chart", purpose="TREATMENT", expires_at=None): active and indexed."""

    def _grant(
        patient: User,
        grantee: User,
        scope: str = "chart",
        purpose: str = "TREATMENT",
        expires_at: dt.datetime | None = None,
    ) -> Consent:
        consent = consent_services.grant_with_managed_key(
            patient=patient,
            password=PASSWORD,
            grantee=grantee.eth_address,
            scope=scope,
            purpose=purpose,
            expires_at=expires_at,
        )
        drain_outbox()
        consent.refresh_from_db()
        assert consent.status == "active", consent.failure_reason
        return consent

    return _grant


def revoke(patient: User, consent: Consent) -> None:
    consent_services.revoke_with_managed_key(patient=patient, consent=consent, password=PASSWORD)
    drain_outbox()
