"""Fixtures for the record tests: a per-test KEK ring, FHIR and file samples, and a `grant` helper that
signs a consent with the patient's managed key and drives it through the real relayer and indexer."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from access.consent import services as consent_services
from access.identity.users import address_of
from access.models import Consent, User
from contracts.drain import drain_outbox
from ehr.storage.unixfs import parse_cid
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
            grantee=address_of(grantee),
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


def _block_location(cid: str) -> tuple[Path, int, int]:
    """Where the local store keeps the root block of `cid`: its pack file, offset and length."""
    root = Path(settings.IPFS_LOCAL_DIR)
    with sqlite3.connect(root / "index.sqlite3") as db:
        pack, offset, length = db.execute(
            "SELECT pack, offset, length FROM blocks WHERE digest = ?", (parse_cid(cid).digest,)
        ).fetchone()
    return root / "packs" / pack, offset, length


def corrupt_blob(cid: str) -> None:
    """Overwrite the last bytes of a stored blob in place, as an attacker with disk access would."""
    path, offset, length = _block_location(cid)
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset + length - 8)
        handle.write(b"\x00TAMPER\x00")


def delete_pack_of(cid: str) -> None:
    """Delete the pack file holding a blob: the bytes are lost, nothing is altered."""
    path, _offset, _length = _block_location(cid)
    path.unlink()
