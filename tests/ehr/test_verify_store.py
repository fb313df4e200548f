"""`manage.py verify_store` checks every record's blob (present, hashing to its digest, proving into the
root anchored on chain), lists the blobs no row names, exits non-zero on any of it, and with
`--repair-from URL` puts missing blobs back from a Kubo node, verified against CID and digest.

The node is the recorded-protocol Kubo fake that `ipfs_push`'s tests use (tests/ehr/kubo_fake.py): no
Kubo binary installs here, and the fake's CIDs come from the independent JS importer.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from contracts.drain import drain_outbox
from ehr import anchoring, records, store
from ehr.models import Record
from ehr.storage import LocalBlockStore
from ehr.storage.unixfs import iter_blocks
from tests.ehr.conftest import corrupt_blob, delete_pack_of, observation
from tests.ehr.kubo_fake import KuboFake

pytestmark = pytest.mark.django_db(transaction=True)


def _records(personas: Any, count: int) -> list[Record]:
    return [
        records.create_record(actor=personas.alice, patient=personas.alice, resource=observation(value=v))
        for v in range(count)
    ]


def _verify(*args: str) -> tuple[int, str, dict[str, Any]]:
    """(exit code, table text, final JSON line) of one `verify_store` run."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("verify_store", *args, stdout=out, stderr=err)
    except SystemExit as exited:
        code = int(exited.code or 0)
    lines = out.getvalue().strip().splitlines()
    assert str(settings.IPFS_LOCAL_DIR) not in out.getvalue() + err.getvalue()
    return code, "\n".join(lines[:-1]), json.loads(lines[-1])


def _rows(table: str, kind: str) -> list[str]:
    return [line for line in table.splitlines() if line.split(" ", 1)[0] == kind]


def test_a_sound_store_with_anchored_records_passes(personas: Any) -> None:
    _records(personas, 3)
    anchoring.anchor_all_records()
    drain_outbox()
    code, table, summary = _verify()
    assert code == 0, table
    assert summary["status"] == "ok" and summary["records"] == summary["blobs_ok"] == 3
    assert summary["anchors_checked"] is True and summary["anchored_records"] == 3
    assert "every blob present and matching; no orphans" in table


def test_missing_altered_and_orphan_blobs_are_each_reported_and_fail_the_run(personas: Any) -> None:
    lost, altered, unpinned, sound = _records(personas, 4)
    delete_pack_of(lost.cid)
    corrupt_blob(altered.cid)
    store.content_store().remove(unpinned.cid)
    orphan = store.add(b"sealed bytes of a record the restored database no longer knows")
    code, table, summary = _verify("--skip-anchors")
    assert code == 1
    assert (summary["missing"], summary["tampered"], summary["orphan"]) == (2, 1, 1)
    assert summary["status"] == "problems" and summary["blobs_ok"] == 1
    assert {row.split()[2] for row in _rows(table, "missing")} == {str(lost.id), str(unpinned.id)}
    assert str(altered.id) in _rows(table, "tampered")[0]
    assert orphan in _rows(table, "orphan")[0].split() and str(sound.id) not in table


def test_a_digest_changed_in_the_database_fails_both_the_blob_and_its_anchor(personas: Any) -> None:
    changed, _other = _records(personas, 2)
    anchoring.anchor_all_records()
    drain_outbox()
    Record.objects.filter(pk=changed.pk).update(digest="ab" * 32)
    code, table, summary = _verify()
    assert code == 1
    assert summary["tampered"] == 1 and summary["anchor"] >= 1
    assert any(str(changed.id) in row for row in _rows(table, "anchor"))


def test_a_store_that_cannot_be_read_exits_2(personas: Any) -> None:
    _records(personas, 1)
    shutil.rmtree(settings.IPFS_LOCAL_DIR)
    code, _table, summary = _verify("--skip-anchors")
    assert code == 2 and summary["status"] == "store_unavailable"


def test_repair_from_a_kubo_node_restores_missing_blobs_and_reads_work_again(personas: Any) -> None:
    lost, unpinned, _sound = _records(personas, 3)
    with KuboFake() as node:
        call_command("ipfs_push", to=node.api_url, stdout=io.StringIO())
        delete_pack_of(lost.cid)
        store.content_store().remove(unpinned.cid)
        assert personas.client_for(personas.alice).get(f"/api/records/{lost.id}").status_code == 410

        code, table, summary = _verify("--skip-anchors", "--repair-from", node.api_url)
        assert code == 0, table
        assert summary["repaired"] == 2 and summary["missing"] == 0 and summary["blobs_ok"] == 3
        assert ("POST", "/api/v0/cat", {"arg": [lost.cid], "offline": ["true"]}) in node.requests
    assert _verify("--skip-anchors")[0] == 0
    opened = personas.client_for(personas.alice).get(f"/api/records/{lost.id}")
    assert opened.status_code == 200 and opened.json()["resource"]["valueQuantity"]["value"] == 0


def test_repair_refuses_bytes_that_fail_verification_and_blobs_the_node_lacks(personas: Any) -> None:
    lost, absent = _records(personas, 2)
    with KuboFake(corrupt_cat=True) as node:
        call_command("ipfs_push", to=node.api_url, stdout=io.StringIO())
        node.objects.pop(absent.cid)
        delete_pack_of(lost.cid)
        delete_pack_of(absent.cid)
        code, table, summary = _verify("--skip-anchors", "--repair-from", node.api_url)
    assert code == 1
    assert summary["repaired"] == 0 and summary["missing"] == summary["repair_failed"] == 2
    failed = _rows(table, "repair_failed")
    assert any(str(lost.id) in row and "CidMismatch" in row for row in failed)
    assert any(str(absent.id) in row and "NotFound" in row for row in failed)
    assert personas.client_for(personas.alice).get(f"/api/records/{lost.id}").status_code == 410


def test_repair_from_a_node_that_does_not_answer_fails_each_blob(personas: Any) -> None:
    lost = _records(personas, 2)
    for record in lost:
        delete_pack_of(record.cid)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, table, summary = _verify("--skip-anchors", "--repair-from", closed)
    assert code == 1 and summary["repair_failed"] == summary["missing"] == 2
    assert all("StorageUnavailable" in row for row in _rows(table, "repair_failed"))


def test_restore_rewrites_only_the_blocks_the_store_lost(tmp_path: Path) -> None:
    local = LocalBlockStore(tmp_path / "ipfs")
    data = os.urandom(3 * 256 * 1024 + 1000)  # four leaves and a root
    cid = local.add(data).cid
    (pack,) = (tmp_path / "ipfs" / "packs").rglob("*.pack")
    pack.chmod(0o644)
    first_leaf = next(iter_blocks(data)).size
    os.truncate(pack, first_leaf + 10)  # blocks are written in order: the first leaf survives, no other
    with pytest.raises(Exception, match="missing"):
        local.cat(cid)
    assert local.restore(cid, data) == len(list(iter_blocks(data))) - 1
    assert local.cat(cid) == data
    assert local.restore(cid, data) == 0
    with pytest.raises(Exception, match="chunk to"):
        local.restore(cid, data + b"!")
