"""A store that cannot take writes still serves reads, and refuses writes with a 503 in the error shape:
`storage_read_only` for a read-only store, `storage_full` when the disk has no room, with nothing kept
of the failed write (no record row, no pin, no partial pack, no descriptor left open on a deleted pack).

Both faults are real, on the real store: read-only is file modes for a normal user and the immutable
attribute (`chattr +i`) for root, whom modes do not stop; "no space" is a file-size limit
(RLIMIT_FSIZE), which makes the kernel refuse the pack write with EFBIG, the errno that stands in here
for ENOSPC (both are "no room for these bytes", handled alike; a real full disk needs a mount).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from ehr import records, store
from ehr.models import Record
from ehr.storage import LocalBlockStore, StorageFull, StorageReadOnly
from tests.ehr.conftest import PDF_BYTES, observation

pytestmark = pytest.mark.django_db(transaction=True)

_INTERNAL_NAMES = ("packs/", ".pack", "index.sqlite3", "index.lock")


def _assert_error_shape_without_paths(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail", "field"} and body["error"] == code
    text = response.content.decode()
    for internal in (str(settings.IPFS_LOCAL_DIR), *_INTERNAL_NAMES):
        assert internal not in text


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """`folder` and everything in it cannot be written, by this process, until the block ends."""
    paths = [folder, *folder.rglob("*")]
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.fail(f"root cannot make a folder read-only here (chattr +i: {made.stderr!r})")
    else:
        modes = {path: path.stat().st_mode for path in paths}
        for path in paths:
            path.chmod(stat.S_IMODE(modes[path]) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)
        else:
            for path, mode in modes.items():
                path.chmod(stat.S_IMODE(mode))


@contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Every write of this process past `limit` bytes of a file fails with EFBIG (the signal the kernel
    also sends is ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _packs() -> set[Path]:
    return set(Path(settings.IPFS_LOCAL_DIR).rglob("*.pack"))


def _open_deleted_packs() -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [t for t in targets if t.endswith(".pack (deleted)")]


def _upload(personas: Any, size: int) -> Any:
    data = PDF_BYTES + os.urandom(size)  # a PDF by its magic bytes, too random to compress or dedupe
    upload = SimpleUploadedFile("scan.pdf", data, content_type="application/pdf")
    return personas.client_for(personas.alice).post("/api/records", {"file": upload}, format="multipart")


def test_read_only_store_serves_reads_and_refuses_writes_with_503(personas: Any) -> None:
    record = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    client = personas.client_for(personas.alice)
    with _read_only(Path(settings.IPFS_LOCAL_DIR)):
        read = client.get(f"/api/records/{record.id}")
        assert read.status_code == 200, read.content
        assert read.json()["resource"]["valueQuantity"]["value"] == 13.2

        write = client.post("/api/records", {"resource": observation(value=1.0)}, format="json")
        _assert_error_shape_without_paths(write, 503, "storage_read_only")
        assert "read-only" in write.json()["detail"]

        store._store_for.cache_clear()  # a restart: the store is opened afresh on a read-only folder
        again = client.get(f"/api/records/{record.id}")
        assert again.status_code == 200, again.content
        _assert_error_shape_without_paths(
            client.post("/api/records", {"resource": observation(value=2.0)}, format="json"),
            503,
            "storage_read_only",
        )
    assert list(Record.objects.values_list("id", flat=True)) == [record.id]
    assert list(store.content_store().list_roots()) == [record.cid]


def test_read_only_store_refuses_even_a_write_that_needs_no_new_block(tmp_path: Path) -> None:
    local = LocalBlockStore(tmp_path / "ipfs")
    local.add(b"already there")
    with _read_only(tmp_path / "ipfs"), pytest.raises(StorageReadOnly):
        LocalBlockStore(tmp_path / "ipfs").add(b"already there")  # only the pin count would change


def test_full_disk_is_503_storage_full_and_frees_what_the_write_took(personas: Any) -> None:
    kept = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    packs_before = _packs()
    with _file_size_limit(256 * 1024):
        response = _upload(personas, 1024 * 1024)
    _assert_error_shape_without_paths(response, 503, "storage_full")
    assert "no space" in response.json()["detail"]
    # Nothing half-written: no row, no pin, no partial pack on disk or held open.
    assert list(Record.objects.values_list("id", flat=True)) == [kept.id]
    assert list(store.content_store().list_roots()) == [kept.cid]
    assert _packs() == packs_before
    assert _open_deleted_packs() == []
    # Reads went on, and once there is room again the same upload succeeds.
    assert personas.client_for(personas.alice).get(f"/api/records/{kept.id}").status_code == 200
    assert _upload(personas, 1024 * 1024).status_code == 201


def test_local_store_raises_storage_full_not_a_buffer_error(tmp_path: Path) -> None:
    local = LocalBlockStore(tmp_path / "ipfs")
    for size in (100 * 1024, 3 * 1024 * 1024):  # a pack written inline and one written on a thread
        with _file_size_limit(64 * 1024), pytest.raises(StorageFull) as caught:
            local.add(os.urandom(size))
        assert str(tmp_path) not in str(caught.value)
        assert list((tmp_path / "ipfs" / "packs").rglob("*.pack")) == []
        assert _open_deleted_packs() == []
    assert list(local.list_roots()) == []


def test_deleted_store_health_and_write_name_no_path(personas: Any) -> None:
    """The store folder deleted under a running server: a write is 503 `storage_unavailable`, not a 500."""
    records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    shutil.rmtree(settings.IPFS_LOCAL_DIR)
    response = personas.client_for(personas.alice).post(
        "/api/records", {"resource": observation(value=3.0)}, format="json"
    )
    _assert_error_shape_without_paths(response, 503, "storage_unavailable")
    assert Record.objects.count() == 1
