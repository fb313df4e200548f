"""Bad input and faults: each is refused with a readable error and leaves nothing half-written (no row,
no outbox item, no stored blob); a chain that is down only delays the anchor."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contracts import client
from contracts.drain import drain_outbox
from contracts.models import OutboxItem
from ehr import anchoring, records, store
from ehr.models import Record, RecordAnchorBatch
from healthhash.sealing import new_kek_entry
from tests.ehr.conftest import PDF_BYTES, PNG_BYTES, observation

pytestmark = pytest.mark.django_db(transaction=True)


def _nothing_written() -> None:
    assert not Record.objects.exists()
    assert not OutboxItem.objects.exists() and not RecordAnchorBatch.objects.exists()
    assert list(store.content_store().list_roots()) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post_json(personas: Any, resource: Any) -> Any:
    return personas.client_for(personas.alice).post("/api/records", {"resource": resource}, format="json")


def _upload(personas: Any, data: bytes, content_type: str, name: str = "f") -> Any:
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    return personas.client_for(personas.alice).post("/api/records", {"file": upload}, format="multipart")


def test_invalid_fhir_is_400_naming_the_fhir_path(personas: Any) -> None:
    resource = observation()
    resource["valueQuantity"]["value"] = "not a number"
    response = _post_json(personas, resource)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_fhir"
    assert response.json()["field"] == "Observation.valueQuantity.value"
    _nothing_written()


def test_unknown_resource_type_is_400(personas: Any) -> None:
    response = _post_json(personas, {"resourceType": "Observatoin", "status": "final"})
    assert response.status_code == 400 and response.json()["field"] == "resourceType"


def test_empty_file_is_400(personas: Any) -> None:
    response = _upload(personas, b"", "application/pdf")
    assert response.status_code == 400 and response.json()["error"] == "empty_file"
    _nothing_written()


def test_wrong_content_type_is_415_with_a_message(personas: Any) -> None:
    plain = _upload(personas, b"just some text", "text/plain")
    assert plain.status_code == 415 and "PDF, PNG, JPEG or DICOM" in plain.json()["detail"]
    lying = _upload(personas, PNG_BYTES, "application/pdf")
    assert lying.status_code == 415 and "image/png" in lying.json()["detail"]
    _nothing_written()


def test_oversized_file_and_resource_are_413_and_nothing_is_stored(personas: Any, settings: Any) -> None:
    settings.RECORD_MAX_BYTES = 64
    assert _upload(personas, PDF_BYTES, "application/pdf").status_code == 413
    big = observation()
    big["note"] = [{"text": "x" * 200}]
    response = _post_json(personas, big)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    _nothing_written()


def test_storage_backend_down_is_503_and_nothing_is_written(personas: Any, settings: Any) -> None:
    settings.IPFS_API_URL = f"http://127.0.0.1:{_free_port()}"
    response = _post_json(personas, observation())
    assert response.status_code == 503 and response.json()["error"] == "storage_unavailable"
    assert not Record.objects.exists() and not OutboxItem.objects.exists()


def test_database_failure_after_store_removes_the_blob(personas: Any, monkeypatch: Any) -> None:
    """A fake is needed here: a database that fails mid-transaction cannot be caused on demand."""

    def failing_log(event: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(records.audit, "record_access", failing_log)
    with pytest.raises(RuntimeError):
        records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    _nothing_written()


def test_kek_missing_is_503_key_unavailable(personas: Any, settings: Any) -> None:
    record = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("some-other-kek")
    response = personas.client_for(personas.alice).get(f"/api/records/{record.id}")
    assert response.status_code == 503 and response.json()["error"] == "key_unavailable"
    assert "kek-test" in response.json()["detail"]


def test_no_kek_configured_refuses_to_create(personas: Any, settings: Any) -> None:
    settings.KEY_ENCRYPTION_KEYS = ""
    response = _post_json(personas, observation())
    assert response.status_code == 503 and response.json()["error"] == "key_unavailable"
    _nothing_written()


def test_kek_file_missing_is_503_without_the_servers_path(
    personas: Any, settings: Any, tmp_path: Any
) -> None:
    record = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    missing = tmp_path / "secret-dir" / "kek-file"
    settings.KEY_ENCRYPTION_KEYS = str(missing)
    response = personas.client_for(personas.alice).get(f"/api/records/{record.id}")
    assert response.status_code == 503 and response.json()["error"] == "key_unavailable"
    assert "secret-dir" not in response.content.decode() and str(tmp_path) not in response.content.decode()


def test_chain_down_stores_the_record_and_the_anchor_waits(personas: Any, settings: Any) -> None:
    live_rpc = settings.ETH_RPC_URL
    settings.ETH_RPC_URL = f"http://127.0.0.1:{_free_port()}"
    client.reset_caches()
    response = _post_json(personas, observation())
    assert response.status_code == 201
    record = Record.objects.get(pk=response.json()["id"])
    (batch,) = anchoring.anchor_all_records()  # the batch and its outbox item need no chain
    assert batch.outbox is not None
    assert batch.outbox.status == "pending" and batch.status == "queued"
    assert records.open_record(record_id=record.id, actor=personas.alice).resource["status"] == "final"

    settings.ETH_RPC_URL = live_rpc
    client.reset_caches()
    drain_outbox()
    record.refresh_from_db()
    assert record.anchored_block is not None and record.anchor_batch is not None
    assert record.anchor_batch.status == "anchored"


def test_valid_fhir_that_is_not_a_record_is_422_not_a_record(personas: Any) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Chalmers"}], "gender": "male"}
    response = _post_json(personas, patient)
    assert response.status_code == 422 and response.json()["error"] == "not_a_record"
    assert "Patient is not a health record" in response.json()["detail"]
    assert "Observation" in response.json()["detail"]  # says what a record can be
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": observation()}]}
    response = _post_json(personas, collection)
    assert response.status_code == 422 and response.json()["error"] == "not_a_record"
    _nothing_written()
