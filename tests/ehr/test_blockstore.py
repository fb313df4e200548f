"""The embedded block store: Kubo CIDs, verified reads, pin counts, garbage collection of unshared blocks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ehr.storage import BlockCorrupted, BlockMissing, ContentStore, LocalBlockStore, NotFound, compute_cid
from ehr.storage.blockstore import IndexLooksLost
from ehr.storage.unixfs import CHUNK_SIZE


def _bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def _packs(store_root: Path) -> list[Path]:
    return sorted((store_root / "packs").glob("*/*.pack"))


@pytest.fixture
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs", fsync=False)


def test_local_store_satisfies_the_content_store_protocol(store: LocalBlockStore) -> None:
    assert isinstance(store, ContentStore)


@pytest.mark.parametrize("cid_version", [0, 1])
@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_add_returns_kubo_cid_and_cat_returns_the_bytes(tmp_path: Path, size: int, cid_version: int) -> None:
    store = LocalBlockStore(tmp_path / "ipfs", cid_version=cid_version, fsync=True)
    data = _bytes(size)
    result = store.add(data)
    assert result.cid == compute_cid(data, cid_version=cid_version)
    assert result.size == size
    assert store.cat(result.cid) == data
    assert store.stat(result.cid).size == size
    assert store.has(result.cid)


def test_file_larger_than_one_write_stage_round_trips_with_and_without_fsync(tmp_path: Path) -> None:
    data = _bytes(9 * 1024 * 1024 + 5)  # more than two 4 MiB O_DIRECT stages, unaligned tail
    for fsync in (False, True):
        store = LocalBlockStore(tmp_path / f"ipfs-{fsync}", fsync=fsync)
        assert store.cat(store.add(data).cid) == data


def test_per_call_cid_version_overrides_the_store_default(store: LocalBlockStore) -> None:
    v1 = store.add(b"sealed", cid_version=1).cid
    assert v1 == compute_cid(b"sealed", cid_version=1)
    assert store.cat(v1) == b"sealed"


def test_add_many_stores_every_blob_in_one_pack_with_the_cids_add_gives(store: LocalBlockStore) -> None:
    datas = [_bytes(100, seed=i) for i in range(3)]
    results = store.add_many(datas)
    assert [r.cid for r in results] == [compute_cid(d) for d in datas]
    assert [store.cat(r.cid) for r in results] == datas
    assert len(_packs(store.root)) == 1


def test_add_many_that_fails_midway_pins_none_of_its_blobs(store: LocalBlockStore) -> None:
    # The third is text, not bytes: it fails after the first two were written to the pack.
    datas = [_bytes(100, seed=1), _bytes(100, seed=2), "not bytes"]
    with pytest.raises(TypeError, match="bytes-like"):
        store.add_many(datas)  # type: ignore[arg-type]
    assert list(store.list_roots()) == []
    assert _packs(store.root) == []


def test_objects_survive_reopening_the_store(tmp_path: Path) -> None:
    cid = LocalBlockStore(tmp_path / "ipfs").add(b"persisted").cid
    reopened = LocalBlockStore(tmp_path / "ipfs")
    assert reopened.cat(cid) == b"persisted"
    assert list(reopened.list_roots()) == [cid]


def test_unknown_cid_is_not_found(store: LocalBlockStore) -> None:
    missing = compute_cid(b"never added")
    assert not store.has(missing)
    with pytest.raises(NotFound):
        store.cat(missing)
    with pytest.raises(NotFound):
        store.stat(missing)
    with pytest.raises(NotFound):
        store.remove(missing)


@pytest.mark.parametrize("size", [40, 3 * CHUNK_SIZE])
def test_a_flipped_byte_on_disk_fails_the_read_instead_of_returning_data(
    store: LocalBlockStore, size: int
) -> None:
    cid = store.add(_bytes(size)).cid
    (pack,) = _packs(store.root)
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    with pytest.raises(BlockCorrupted):
        store.cat(cid)


def test_a_truncated_pack_fails_the_read_as_missing_bytes(store: LocalBlockStore) -> None:
    cid = store.add(_bytes(2 * CHUNK_SIZE)).cid
    (pack,) = _packs(store.root)
    pack.chmod(0o644)
    with pack.open("r+b") as handle:
        handle.truncate(CHUNK_SIZE)
    with pytest.raises(BlockMissing) as caught:  # lost bytes, not altered ones
        store.cat(cid)
    assert pack.name not in str(caught.value)


def test_removing_a_file_deletes_its_blocks_but_keeps_blocks_shared_with_another_root(
    store: LocalBlockStore,
) -> None:
    base = _bytes(3 * CHUNK_SIZE)
    extended = base + _bytes(CHUNK_SIZE, seed=1)  # shares the first three leaves with `base`
    base_cid, extended_cid = store.add(base).cid, store.add(extended).cid
    store.remove(base_cid)
    assert not store.has(base_cid)
    assert store.cat(extended_cid) == extended
    store.remove(extended_cid)
    assert list(store.list_roots()) == []
    assert _packs(store.root) == []


def test_adding_the_same_bytes_twice_needs_two_removals(store: LocalBlockStore) -> None:
    first, second = store.add(b"same bytes"), store.add(b"same bytes")
    assert first.cid == second.cid
    assert len(_packs(store.root)) == 1  # the second add stored nothing new
    store.remove(first.cid)
    assert store.cat(first.cid) == b"same bytes"
    store.remove(first.cid)
    assert not store.has(first.cid)
    assert _packs(store.root) == []


def test_list_roots_names_every_pinned_root(store: LocalBlockStore) -> None:
    cids = {store.add(_bytes(100, seed=i)).cid for i in range(5)}
    assert set(store.list_roots()) == cids


def test_garbage_collection_drops_orphan_packs_and_compacts_partly_dead_ones(store: LocalBlockStore) -> None:
    base = _bytes(3 * CHUNK_SIZE)
    extended = base + _bytes(CHUNK_SIZE, seed=2)
    base_cid, extended_cid = store.add(base).cid, store.add(extended).cid
    store.remove(base_cid)  # base's pack keeps the shared leaves plus base's dead root block
    orphan = store.root / "packs" / "ab" / "crashed-add.pack"
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"blocks written before a crash, never indexed")
    size_before = sum(p.stat().st_size for p in _packs(store.root))

    assert store.collect_garbage(grace_seconds=0) == 2
    assert not orphan.exists()
    assert sum(p.stat().st_size for p in _packs(store.root)) < size_before
    assert store.cat(extended_cid) == extended


def test_garbage_collection_spares_young_unindexed_packs(store: LocalBlockStore) -> None:
    in_flight = store.root / "packs" / "cd" / "add-in-progress.pack"
    in_flight.parent.mkdir(exist_ok=True)
    in_flight.write_bytes(b"x")
    assert store.collect_garbage(grace_seconds=3600) == 0
    assert in_flight.exists()


def test_garbage_collection_refuses_when_the_index_looks_lost(tmp_path: Path) -> None:
    """A lost or replaced index names no pack: sweeping its "orphans" would delete every record's bytes."""
    store = LocalBlockStore(tmp_path / "ipfs", fsync=False)
    for i in range(3):
        store.add(_bytes(CHUNK_SIZE + 10, seed=i))
    packs = _packs(store.root)
    (store.root / "index.sqlite3").unlink()
    fresh = LocalBlockStore(tmp_path / "ipfs", fsync=False)  # opens a new, empty index

    with pytest.raises(IndexLooksLost, match="nothing was deleted"):
        fresh.collect_garbage(grace_seconds=0)
    assert _packs(store.root) == packs

    assert fresh.collect_garbage(grace_seconds=0, force=True) == len(packs)  # the operator's explicit choice
    assert _packs(store.root) == []


@pytest.mark.parametrize("direct_io", [True, False])
def test_store_works_on_tmpfs_and_with_buffered_writes(direct_io: bool) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no tmpfs at /dev/shm on this machine")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as folder:
        store = LocalBlockStore(Path(folder), fsync=False, direct_io=direct_io)  # tmpfs has no O_DIRECT
        data = _bytes(5 * CHUNK_SIZE + 3)
        assert store.cat(store.add(data).cid) == data


def test_concurrent_adds_and_removals_of_overlapping_files_never_lose_a_pinned_block(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    shared = _bytes(2 * CHUNK_SIZE, seed=7)

    def churn(worker: int) -> str:
        store = LocalBlockStore(tmp_path / "ipfs", fsync=False)  # one store object per worker, like processes
        for round_ in range(6):
            store.remove(store.add(shared).cid)
            kept = store.add(shared + _bytes(100, seed=worker * 100 + round_)).cid
            if round_ < 5:
                store.remove(kept)
        return kept

    with ThreadPoolExecutor(4) as pool:
        survivors = list(pool.map(churn, range(4)))
    store = LocalBlockStore(tmp_path / "ipfs", fsync=False)
    assert set(store.list_roots()) == set(survivors)
    for cid in survivors:
        assert store.cat(cid)[: len(shared)] == shared
