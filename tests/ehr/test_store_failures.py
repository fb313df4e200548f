"""Lost bytes are not tampered bytes: a blob that is gone answers 410 `missing`, a store that cannot be
read answers 503 `storage_unavailable`, each with an "open" entry whose outcome is "error"; only bytes
that are present but hash differently are 409 `tampered` with a "tamper" entry. No answer and no log
entry names a file of the store."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from django.conf import settings

from access.models import AccessLogEntry
from ehr import records, store
from ehr.models import Record
from ehr.storage import BlockMissing, LocalBlockStore
from tests.ehr.conftest import corrupt_blob, delete_pack_of, observation

pytestmark = pytest.mark.django_db(transaction=True)


def _new(personas: Any) -> Record:
    return records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())


def _get(personas: Any, record: Record) -> Any:
    return personas.client_for(personas.alice).get(f"/api/records/{record.id}")


def _assert_no_storage_path(text: str) -> None:
    for internal in (str(settings.IPFS_LOCAL_DIR), "packs/", ".pack", "index.sqlite3", "index.lock"):
        assert internal not in text


def _no_tamper_alert(record: Record) -> None:
    assert not AccessLogEntry.objects.filter(record_id=str(record.id), action="tamper").exists()


def test_unpinned_blob_is_410_missing_with_an_error_entry_not_a_tamper_alert(personas: Any) -> None:
    record = _new(personas)
    store.content_store().remove(record.cid)
    response = _get(personas, record)
    assert response.status_code == 410 and response.json()["error"] == "missing"
    assert str(record.id) in response.json()["detail"]
    _no_tamper_alert(record)
    entry = AccessLogEntry.objects.get(record_id=str(record.id), outcome="error")
    assert entry.action == "open" and entry.reason.startswith("missing:")


def test_deleted_pack_file_is_missing_and_the_answer_names_no_file(personas: Any) -> None:
    record = _new(personas)
    delete_pack_of(record.cid)
    response = _get(personas, record)
    assert response.status_code == 410 and response.json()["error"] == "missing"
    _assert_no_storage_path(response.content.decode())
    _no_tamper_alert(record)


def test_store_deleted_under_a_running_server_is_503_then_missing_after_a_restart(personas: Any) -> None:
    record = _new(personas)
    shutil.rmtree(settings.IPFS_LOCAL_DIR)

    running = _get(personas, record)
    assert running.status_code == 503 and running.json()["error"] == "storage_unavailable"
    _assert_no_storage_path(running.content.decode())

    store._store_for.cache_clear()  # what a restart does: the store is opened afresh (and empty)
    restarted = _get(personas, record)
    assert restarted.status_code == 410 and restarted.json()["error"] == "missing"
    _no_tamper_alert(record)
    reasons = list(
        AccessLogEntry.objects.filter(record_id=str(record.id), outcome="error").values_list(
            "reason", flat=True
        )
    )
    assert [reason.split(":")[0] for reason in reasons] == ["storage_unavailable", "missing"]
    for reason in reasons:
        _assert_no_storage_path(reason)


def test_altered_bytes_alone_are_409_tampered_and_alerted_without_file_names(personas: Any) -> None:
    record = _new(personas)
    corrupt_blob(record.cid)
    response = _get(personas, record)
    assert response.status_code == 409 and response.json()["error"] == "tampered"
    _assert_no_storage_path(response.content.decode())
    alert = AccessLogEntry.objects.get(record_id=str(record.id), action="tamper")
    assert "content address" in alert.reason
    _assert_no_storage_path(alert.reason)


def test_local_store_reports_a_lost_or_cut_short_pack_as_missing_naming_the_block(personas: Any) -> None:
    record = _new(personas)
    local = LocalBlockStore(settings.IPFS_LOCAL_DIR)
    delete_pack_of(record.cid)
    with pytest.raises(BlockMissing) as caught:
        local.cat(record.cid)
    assert ".pack" not in str(caught.value) and "packs/" not in str(caught.value)
