"""The record API per role: patients write and read their own chart, doctors only what a consent
covers, everyone else sees nothing; other users' objects are 404, denied consent is 403 with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from access.models import AccessLogEntry
from ehr.models import Record
from tests.ehr.conftest import PDF_BYTES, PNG_BYTES, observation, revoke

pytestmark = pytest.mark.django_db(transaction=True)


def _create(personas: Any, user: Any, resource: dict[str, Any], **extra: Any) -> Any:
    return personas.client_for(user).post("/api/records", {"resource": resource, **extra}, format="json")


def test_patient_creates_fhir_record_and_reads_it_back(personas: Any) -> None:
    created = _create(personas, personas.alice, observation(value=14.1))
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["category"] == "laboratory" and body["resource_type"] == "Observation"
    assert body["anchored"] is False

    opened = personas.client_for(personas.alice).get(f"/api/records/{body['id']}")
    assert opened.status_code == 200
    assert opened.json()["resource"]["valueQuantity"]["value"] == 14.1
    assert opened.json()["access"]["legal_basis"] == "owner"


def test_database_holds_no_plaintext_and_no_clear_key(personas: Any) -> None:
    marker = "Zyxwvut-unique-marker"
    resource = observation()
    resource["note"] = [{"text": marker}]
    record_id = _create(personas, personas.alice, resource).json()["id"]
    record = Record.objects.get(pk=record_id)
    row = b"".join(
        (v if isinstance(v, bytes | memoryview) else str(v).encode())
        for v in Record.objects.filter(pk=record_id).values_list()[0]
    )
    assert marker.encode() not in row
    assert len(bytes(record.wrapped_key)) > 32 + 16  # a wrapped key: header, nonce, ciphertext and tag
    assert record.key_id == "kek-test"


def test_patient_uploads_pdf_and_downloads_the_same_bytes(personas: Any) -> None:
    api = personas.client_for(personas.alice)
    upload = _upload(api, PDF_BYTES, "scan.pdf", "application/pdf", category="laboratory")
    assert upload.status_code == 201, upload.json()
    record = upload.json()
    assert record["content_type"] == "application/pdf" and record["category"] == "laboratory"

    detail = api.get(f"/api/records/{record['id']}").json()
    attachment = detail["resource"]["content"][0]["attachment"]
    assert detail["resource"]["resourceType"] == "DocumentReference"
    assert attachment["url"] == f"/api/records/{record['id']}/content" and attachment["size"] == len(
        PDF_BYTES
    )

    content = api.get(f"/api/records/{record['id']}/content")
    assert content.status_code == 200
    assert content["Content-Type"] == "application/pdf"
    assert content.content == PDF_BYTES


def _upload(api: Any, data: bytes, name: str, content_type: str, **fields: Any) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return api.post(
        "/api/records",
        {"file": SimpleUploadedFile(name, data, content_type=content_type), **fields},
        format="multipart",
    )


def test_doctor_with_chart_consent_lists_reads_and_writes(personas: Any, grant: Any) -> None:
    record_id = _create(personas, personas.alice, observation()).json()["id"]
    _create(personas, personas.dave, observation())  # another patient's: must not show up
    grant(personas.alice, personas.bob, "chart")
    bob = personas.client_for(personas.bob)

    listed = bob.get("/api/records").json()
    assert [r["id"] for r in listed["results"]] == [record_id]
    assert bob.get(f"/api/records/{record_id}").json()["access"]["legal_basis"].startswith("consent:")

    written = _create(personas, personas.bob, observation(value=9.9), patient=personas.alice.eth_address)
    assert written.status_code == 201, written.json()
    assert Record.objects.get(pk=written.json()["id"]).created_by == personas.bob
    assert AccessLogEntry.objects.filter(patient_address=personas.alice.eth_address, action="list").exists()


def test_category_consent_covers_only_that_category(personas: Any, grant: Any) -> None:
    lab = _create(personas, personas.alice, observation()).json()["id"]
    vital = _create(personas, personas.alice, observation(code="8867-4", category="vital-signs")).json()["id"]
    grant(personas.alice, personas.bob, "category:laboratory")
    bob = personas.client_for(personas.bob)

    assert [r["id"] for r in bob.get("/api/records").json()["results"]] == [lab]
    assert bob.get(f"/api/records/{lab}").status_code == 200
    denied = bob.get(f"/api/records/{vital}")
    assert denied.status_code == 403 and denied.json()["error"] == "no_consent"
    refused = _create(
        personas, personas.bob, observation(category="vital-signs"), patient=personas.alice.eth_address
    )
    assert refused.status_code == 403 and refused.json()["error"] == "no_consent"


def test_record_scope_reads_one_record_but_does_not_let_the_doctor_write(personas: Any, grant: Any) -> None:
    one = _create(personas, personas.alice, observation()).json()["id"]
    other = _create(personas, personas.alice, observation(value=1.0)).json()["id"]
    grant(personas.alice, personas.bob, f"record:{one}")
    bob = personas.client_for(personas.bob)

    assert [r["id"] for r in bob.get("/api/records").json()["results"]] == [one]
    assert bob.get(f"/api/records/{other}").status_code == 403
    assert (
        _create(personas, personas.bob, observation(), patient=personas.alice.eth_address).status_code == 403
    )


def test_revoked_consent_denies_the_next_read(personas: Any, grant: Any) -> None:
    record_id = _create(personas, personas.alice, observation()).json()["id"]
    consent = grant(personas.alice, personas.bob, "chart")
    bob = personas.client_for(personas.bob)
    assert bob.get(f"/api/records/{record_id}").status_code == 200

    revoke(personas.alice, consent)
    denied = bob.get(f"/api/records/{record_id}")
    assert denied.status_code == 403 and denied.json()["error"] == "revoked"
    assert bob.get("/api/records").json()["results"] == []
    deny = AccessLogEntry.objects.filter(record_id=record_id, action="deny").get()
    assert deny.outcome == "denied" and deny.reason == "revoked" and deny.actor == personas.bob


def test_foreign_objects_are_404_for_every_other_role(personas: Any) -> None:
    record_id = _create(personas, personas.alice, observation()).json()["id"]
    for user in (personas.dave, personas.carol, personas.hadmin, personas.cadmin):
        api = personas.client_for(user)
        assert api.get(f"/api/records/{record_id}").status_code == 404, user.username
        assert api.get(f"/api/records/{record_id}/content").status_code == 404, user.username
        assert api.get("/api/records").json()["results"] == [], user.username


def test_consent_to_another_doctor_does_not_cover_this_one(personas: Any, grant: Any) -> None:
    record_id = _create(personas, personas.alice, observation()).json()["id"]
    grant(personas.alice, personas.bob, "chart")
    assert personas.client_for(personas.bob2).get(f"/api/records/{record_id}").status_code == 404
    assert personas.client_for(personas.carol).get("/api/records").json()["results"] == []


def test_patient_filter_and_category_filter(personas: Any, grant: Any) -> None:
    _create(personas, personas.alice, observation())
    _create(personas, personas.dave, observation())
    grant(personas.alice, personas.bob, "chart")
    grant(personas.dave, personas.bob, "chart")
    bob = personas.client_for(personas.bob)
    assert bob.get("/api/records").json()["count"] == 2
    only_dave = bob.get("/api/records", {"patient": personas.dave.eth_address.lower()}).json()
    assert [r["patient_address"] for r in only_dave["results"]] == [personas.dave.eth_address]
    assert bob.get("/api/records", {"category": "medication"}).json()["count"] == 0


def test_doctor_writing_for_an_unknown_patient_is_404(personas: Any) -> None:
    response = _create(personas, personas.bob, observation(), patient="0x" + "12" * 20)
    assert response.status_code == 404 and response.json()["field"] == "patient"


def test_png_upload_with_generic_type_is_sniffed(personas: Any) -> None:
    api = personas.client_for(personas.alice)
    response = _upload(api, PNG_BYTES, "x.bin", "application/octet-stream", category="imaging")
    assert response.status_code == 201 and response.json()["content_type"] == "image/png"
