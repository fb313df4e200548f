"""Import splits a FHIR Bundle into records, all or nothing; `import_fhir` does the same from files; the
export gives the patient the whole chart as one FHIR Bundle with their consents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from access.models import AccessLogEntry
from ehr import fhir, store
from ehr.models import Record
from tests.ehr.conftest import PDF_BYTES, bundle, condition, observation

pytestmark = pytest.mark.django_db(transaction=True)


def _import(personas: Any, user: Any, body: Any) -> Any:
    return personas.client_for(user).post("/api/records/import", body, format="json")


def test_collection_bundle_becomes_one_record_per_resource(personas: Any) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    response = _import(
        personas, personas.alice, bundle(patient, observation(), condition(), kind="transaction")
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 2
    assert sorted(r["category"] for r in body["records"]) == ["condition", "laboratory"]
    assert body["skipped"] == [{"index": 0, "resourceType": "Patient", "reason": "not a health record"}]
    assert Record.objects.filter(patient=personas.alice).count() == 2
    assert len(list(store.content_store().list_roots())) == 2


def test_one_bad_entry_rejects_the_whole_bundle_with_its_path(personas: Any) -> None:
    bad = observation()
    bad["status"] = "done"
    response = _import(personas, personas.alice, {"bundle": bundle(observation(), bad)})
    assert response.status_code == 400
    assert response.json()["field"] == "Bundle.entry[1].resource.status"
    assert not Record.objects.exists()


def test_searchset_bundle_is_refused(personas: Any) -> None:
    response = _import(personas, personas.alice, bundle(observation(), kind="searchset"))
    assert response.status_code == 400 and response.json()["field"] == "Bundle.type"


def test_doctor_import_needs_consent_for_every_category(personas: Any, grant: Any) -> None:
    grant(personas.alice, personas.bob, "category:laboratory")
    body = {"patient": personas.alice.eth_address, "bundle": bundle(observation(), condition())}
    refused = _import(personas, personas.bob, body)
    assert refused.status_code == 403 and refused.json()["error"] == "no_consent"
    assert not Record.objects.exists()
    body["bundle"] = bundle(observation(), observation(value=2.0))
    assert _import(personas, personas.bob, body).json()["created"] == 2


def test_import_fhir_command_reads_files(personas: Any, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(bundle(observation(), condition())))
    (tmp_path / "b.json").write_text(json.dumps(observation(value=5.0)))
    call_command("import_fhir", str(tmp_path), patient=personas.alice.username, stdout=open("/dev/null", "w"))
    assert Record.objects.filter(patient=personas.alice).count() == 3


def test_export_is_the_whole_chart_with_consents(personas: Any, grant: Any) -> None:
    api = personas.client_for(personas.alice)
    _import(personas, personas.alice, bundle(observation(), condition()))
    from django.core.files.uploadedfile import SimpleUploadedFile

    api.post(
        "/api/records",
        {"file": SimpleUploadedFile("a.pdf", PDF_BYTES, "application/pdf")},
        format="multipart",
    )
    _import(personas, personas.dave, bundle(observation(value=77.0)))  # someone else's chart
    consent = grant(personas.alice, personas.bob, "category:laboratory")

    response = api.get("/api/patients/me/export")
    assert response.status_code == 200
    exported = response.json()
    fhir.validate_resource(exported)
    types = sorted(entry["resource"]["resourceType"] for entry in exported["entry"])
    assert types == ["Condition", "Consent", "DocumentReference", "Observation"]
    consent_out = next(e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "Consent")
    assert consent_out["id"] == str(consent.id) and consent_out["status"] == "active"
    document = next(
        e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    import base64

    assert base64.b64decode(document["content"][0]["attachment"]["data"]) == PDF_BYTES
    assert 77.0 not in [e["resource"].get("valueQuantity", {}).get("value") for e in exported["entry"]]
    assert (
        AccessLogEntry.objects.filter(patient_address=personas.alice.eth_address, action="export").count()
        == 1
    )


def test_only_patients_export(personas: Any) -> None:
    assert personas.client_for(personas.bob).get("/api/patients/me/export").status_code == 403
