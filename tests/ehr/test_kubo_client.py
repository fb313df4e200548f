"""KuboStore against a Kubo RPC node, and push_all from the local store.

No Kubo binary can be installed on this machine (Debian has no kubo package, the npm `kubo`
package downloads its binary at install time, PyPI's kubo-python ships a library without the RPC
API), so these tests run against tests/ehr/kubo_fake.py: a real HTTP server on 127.0.0.1 that
answers the endpoints as Kubo does (POST only, JSON-lines `add`, Kubo's error JSON) with CIDs from
the independent JS importer. Its fault switches cause a wrong CID or corrupted bytes on demand.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ehr.storage import (
    CidMismatch,
    ContentStore,
    KuboStore,
    LocalBlockStore,
    NotFound,
    StorageError,
    StorageUnavailable,
    compute_cid,
    push_all,
)
from ehr.storage.unixfs import CHUNK_SIZE
from tests.ehr.kubo_fake import KuboFake, js_cid


@pytest.fixture
def kubo_node() -> Iterator[KuboFake]:
    with KuboFake() as node:
        yield node


@pytest.fixture
def kubo(kubo_node: KuboFake) -> KuboStore:
    return KuboStore(kubo_node.api_url, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_kubo_store_satisfies_the_content_store_protocol(kubo: KuboStore) -> None:
    assert isinstance(kubo, ContentStore)


@pytest.mark.parametrize("cid_version", [0, 1])
def test_add_pins_with_kubo_default_settings_and_cat_returns_the_bytes(
    kubo_node: KuboFake, cid_version: int
) -> None:
    kubo = KuboStore(kubo_node.api_url, cid_version=cid_version)
    data = b"sealed record " * 30_000  # two chunks
    result = kubo.add(data)
    assert result.cid == js_cid(data, cid_version=cid_version)
    assert result.size == len(data)
    assert kubo.has(result.cid)
    assert kubo.cat(result.cid) == data
    assert kubo.stat(result.cid).size == len(data)
    _method, _path, query = next(r for r in kubo_node.requests if r[1] == "/api/v0/add")
    assert query["pin"] == ["true"]
    assert query["chunker"] == [f"size-{CHUNK_SIZE}"]
    assert query["cid-version"] == [str(cid_version)]
    assert query["raw-leaves"] == ["true" if cid_version == 1 else "false"]


def test_client_only_sends_post_because_kubo_refuses_get(kubo_node: KuboFake, kubo: KuboStore) -> None:
    kubo.version()
    kubo.add(b"x")
    assert {method for method, _path, _query in kubo_node.requests} == {"POST"}
    assert requests.get(f"{kubo_node.api_url}/api/v0/version", timeout=5).status_code == 405


def test_version_check_accepts_current_kubo_and_refuses_old_nodes(
    kubo_node: KuboFake, kubo: KuboStore
) -> None:
    assert kubo.version() == "0.32.1"
    kubo_node.version = "0.7.0"
    with pytest.raises(StorageError, match="older"):
        kubo.version()


def test_node_reporting_another_cid_is_a_mismatch(kubo_node: KuboFake, kubo: KuboStore) -> None:
    kubo_node.wrong_cid = True
    with pytest.raises(CidMismatch):
        kubo.add(b"record")


def test_add_many_pins_every_blob_and_returns_their_cids_in_order(kubo: KuboStore) -> None:
    datas = [b"first record", b"second record", b"third record"]
    results = kubo.add_many(datas)
    assert [r.cid for r in results] == [js_cid(d, cid_version=0) for d in datas]
    assert [r.size for r in results] == [len(d) for d in datas]
    assert all(kubo.has(r.cid) for r in results)


def test_add_many_failing_midway_unpins_the_blobs_it_already_added(
    kubo_node: KuboFake, kubo: KuboStore
) -> None:
    kubo_node.wrong_cid_from_add = 2
    first, second = b"first record", b"second record"
    with pytest.raises(CidMismatch):
        kubo.add_many([first, second, b"third record"])
    assert not kubo.has(js_cid(first, cid_version=0))
    assert not kubo.has(js_cid(second, cid_version=0))


def test_node_returning_other_bytes_is_a_mismatch_never_data(kubo_node: KuboFake, kubo: KuboStore) -> None:
    cid = kubo.add(b"record").cid
    kubo_node.corrupt_cat = True
    with pytest.raises(CidMismatch):
        kubo.cat(cid)


def test_unknown_cid_is_not_found(kubo: KuboStore) -> None:
    missing = compute_cid(b"never added")
    assert not kubo.has(missing)
    with pytest.raises(NotFound):
        kubo.cat(missing)
    with pytest.raises(NotFound):
        kubo.remove(missing)


def test_remove_unpins(kubo: KuboStore) -> None:
    cid = kubo.add(b"to forget").cid
    assert list(kubo.list_roots()) == [cid]
    kubo.remove(cid)
    assert not kubo.has(cid)
    assert list(kubo.list_roots()) == []


def test_node_down_is_storage_unavailable() -> None:
    kubo = KuboStore(f"http://127.0.0.1:{_free_port()}", timeout=5)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        kubo.add(b"record")
    with pytest.raises(StorageUnavailable):
        kubo.cat(compute_cid(b"record"))
    with pytest.raises(StorageUnavailable):
        kubo.version()


def test_push_all_copies_every_local_root_with_its_cid_version(tmp_path: Path, kubo_node: KuboFake) -> None:
    local = LocalBlockStore(tmp_path / "ipfs", fsync=False)
    roots = {
        local.add(b"v0 record").cid,
        local.add(b"v1 record", cid_version=1).cid,
        local.add(b"z" * 300_000).cid,
    }
    kubo = KuboStore(kubo_node.api_url)

    report = push_all(local, kubo)
    assert report.ok
    assert set(report.pushed) == roots
    assert kubo_node.pins == roots
    assert push_all(local, kubo).already_present == sorted(roots)


def test_push_all_reports_a_corrupted_local_object_and_pushes_the_rest(
    tmp_path: Path, kubo_node: KuboFake
) -> None:
    local = LocalBlockStore(tmp_path / "ipfs", fsync=False)
    good = local.add(b"good").cid
    bad = local.add(b"will rot").cid
    for pack in (tmp_path / "ipfs" / "packs").glob("*/*.pack"):
        if pack.read_bytes().find(b"will rot") >= 0:
            pack.chmod(0o644)
            pack.write_bytes(pack.read_bytes().replace(b"will rot", b"will ROT"))

    report = push_all(local, KuboStore(kubo_node.api_url))
    assert report.pushed == [good]
    assert list(report.failed) == [bad]
    assert "BlockCorrupted" in report.failed[bad]


def test_push_all_stops_when_the_node_is_down(tmp_path: Path) -> None:
    local = LocalBlockStore(tmp_path / "ipfs", fsync=False)
    local.add(b"record")
    with pytest.raises(StorageUnavailable):
        push_all(local, KuboStore(f"http://127.0.0.1:{_free_port()}", timeout=5))
