"""Import splits a FHIR Bundle into records, all or nothing; `import_fhir` does the same from files; the
export gives the patient the whole chart as one FHIR Bundle with their consents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from access.models import AccessLogEntry
from ehr import fhir, records, store
from ehr.models import Record
from tests.ehr.conftest import PDF_BYTES, bundle, condition, corrupt_blob, observation

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


# --------------------------------------------------------------------------- hardening (issue 13, 16)


def test_transaction_delete_and_get_entries_are_skipped_and_reported(personas: Any) -> None:
    transaction = bundle(observation(), condition(), kind="transaction")
    for entry in transaction["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    transaction["entry"] += [
        {"request": {"method": "DELETE", "url": "Observation/1"}},
        {"request": {"method": "DELETE", "url": "Observation/2"}},
        {"request": {"method": "GET", "url": "Condition/3"}},
        {"request": {"method": "DELETE", "url": "Condition/4"}},  # entry[5]: refused before
    ]
    response = _import(personas, personas.alice, transaction)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 2
    assert [(s["index"], s["reason"]) for s in body["skipped"]] == [
        (2, "DELETE entry has no resource to import"),
        (3, "DELETE entry has no resource to import"),
        (4, "GET entry has no resource to import"),
        (5, "DELETE entry has no resource to import"),
    ]


def test_chart_and_access_log_exports_are_served_as_fhir_json(personas: Any) -> None:
    api = personas.client_for(personas.alice)
    _import(personas, personas.alice, bundle(observation()))
    chart = api.get("/api/patients/me/export")
    assert chart.status_code == 200 and chart["Content-Type"] == "application/fhir+json"
    assert json.loads(chart.content)["resourceType"] == "Bundle"
    log = api.get("/api/patients/me/access-log?format=fhir")
    assert log.status_code == 200 and log["Content-Type"].split(";")[0] == "application/fhir+json"


def _outcomes(exported: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]


def _assert_no_storage_path(text: str) -> None:
    for internal in (str(settings.IPFS_LOCAL_DIR), "packs/", ".pack", "index.sqlite3"):
        assert internal not in text


def test_export_with_a_tampered_blob_exports_the_rest_and_names_the_broken_record(personas: Any) -> None:
    api = personas.client_for(personas.alice)
    _import(personas, personas.alice, bundle(observation(value=1.0), observation(value=2.0), condition()))
    victim = Record.objects.filter(patient=personas.alice, resource_type="Observation").order_by("id")[0]
    victim_value = records.open_record(record_id=victim.id, actor=personas.alice).resource["valueQuantity"]
    corrupt_blob(victim.cid)

    response = api.get("/api/patients/me/export")
    assert response.status_code == 200
    _assert_no_storage_path(response.content.decode())
    exported = json.loads(response.content)
    fhir.validate_resource(exported)
    (outcome,) = _outcomes(exported)
    issue = outcome["issue"][0]
    assert issue["severity"] == "error" and issue["details"]["coding"][0]["code"] == "tampered"
    assert str(victim.id) in issue["details"]["text"] and str(victim.id) in issue["diagnostics"]
    values = [e["resource"].get("valueQuantity") for e in exported["entry"]]
    assert victim_value not in values
    assert sorted(e["resource"]["resourceType"] for e in exported["entry"]) == [
        "Condition",
        "Observation",
        "OperationOutcome",
    ]
    tamper = AccessLogEntry.objects.get(record_id=str(victim.id), action="tamper")
    _assert_no_storage_path(tamper.reason)


def test_export_with_a_missing_blob_marks_it_missing_and_raises_no_tamper_alert(personas: Any) -> None:
    _import(personas, personas.alice, bundle(observation(value=1.0), condition()))
    lost = Record.objects.get(patient=personas.alice, resource_type="Observation")
    store.content_store().remove(lost.cid)

    response = personas.client_for(personas.alice).get("/api/patients/me/export")
    assert response.status_code == 200
    (outcome,) = _outcomes(json.loads(response.content))
    assert outcome["issue"][0]["code"] == "not-found"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "missing"
    assert not AccessLogEntry.objects.filter(action="tamper").exists()
    error = AccessLogEntry.objects.get(record_id=str(lost.id), outcome="error")
    assert error.action == "open" and error.reason.startswith("missing:")
