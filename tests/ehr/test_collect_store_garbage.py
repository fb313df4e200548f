"""`manage.py collect_store_garbage`: the embedded store's GC as an operator runs it, on the store the
settings name (the test's own var folder), with what refuses to run and why."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings as SettingsWrapper

from ehr import store
from ehr.storage import LocalBlockStore
from ehr.storage.unixfs import CHUNK_SIZE


def _local() -> LocalBlockStore:
    backend = store.content_store()
    assert isinstance(backend, LocalBlockStore)
    return backend


def _run(*args: str) -> tuple[int, dict[str, object], str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("collect_store_garbage", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


def _packs(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*/*"))


def test_it_deletes_a_crashed_adds_pack_and_compacts_dead_bytes_and_keeps_every_live_blob() -> None:
    backend = _local()
    base = os.urandom(3 * CHUNK_SIZE)
    extended = base + os.urandom(CHUNK_SIZE)
    base_cid, extended_cid = store.add(base), store.add(extended)
    kept = store.add(b"another record's sealed bytes")
    backend.remove(base_cid)  # its pack keeps the leaves `extended` shares, and base's dead root block
    crashed = backend.root / "packs" / "ab" / "crashed-add.pack"
    crashed.parent.mkdir(exist_ok=True)
    crashed.write_bytes(os.urandom(4096))
    young = backend.root / "packs" / "cd" / "add-in-flight.pack"
    young.parent.mkdir(exist_ok=True)
    young.write_bytes(b"written a moment ago")
    hour_ago = os.stat(crashed).st_mtime - 7200
    os.utime(crashed, (hour_ago, hour_ago))

    code, summary, _ = _run()
    assert code == 0 and summary["status"] == "ok"
    assert summary["packs_removed"] == 2  # the crashed pack, and base's pack rewritten without dead bytes
    assert int(str(summary["bytes_after"])) < int(str(summary["bytes_before"]))
    assert not crashed.exists()
    assert young.exists()  # inside the default grace hour: an add may be about to index it
    assert store.cat(extended_cid) == extended
    assert store.cat(kept) == b"another record's sealed bytes"


def test_a_lost_index_stops_it_before_anything_is_deleted() -> None:
    backend = _local()
    for i in range(3):
        store.add(os.urandom(CHUNK_SIZE + i))
    packs = _packs(backend.root)
    with backend._writing() as db:  # the index replaced by an empty one, as a botched restore leaves it
        db.execute("DELETE FROM blocks")
    code, summary, err = _run("--grace-seconds", "0")
    assert code == 1 and summary == {"status": "index_looks_lost", "packs_removed": 0}
    assert "nothing was deleted" in err and "--force" in err
    assert _packs(backend.root) == packs


def test_it_refuses_a_kubo_store_and_a_negative_grace(settings: SettingsWrapper) -> None:
    with pytest.raises(CommandError, match="--grace-seconds"):
        call_command("collect_store_garbage", "--grace-seconds", "-1", stdout=io.StringIO())
    settings.IPFS_API_URL = "http://127.0.0.1:5001"
    with pytest.raises(CommandError, match="ipfs repo gc"):
        call_command("collect_store_garbage", stdout=io.StringIO())
