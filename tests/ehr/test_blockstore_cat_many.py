"""`cat_many`: the bulk read a training worker uses. Each file comes back as `cat` gives it, or as the
error `cat` would raise, in order; one bad file does not hide the others."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ehr.storage import BlockCorrupted, BlockMissing, LocalBlockStore, NotFound, compute_cid
from ehr.storage.unixfs import CHUNK_SIZE, parse_cid


@pytest.fixture
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs", fsync=False)


def _corrupt(store: LocalBlockStore, cid: str) -> None:
    with sqlite3.connect(store.root / "index.sqlite3") as db:
        pack, offset, length = db.execute(
            "SELECT pack, offset, length FROM blocks WHERE digest = ?", (parse_cid(cid).digest,)
        ).fetchone()
    path = store.root / "packs" / pack
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset + length - 4)
        handle.write(b"\x00BAD")


def test_cat_many_gives_each_file_or_its_error_in_order(store: LocalBlockStore) -> None:
    datas = [b"first", b"second" * 100, bytes(range(256)) * (CHUNK_SIZE // 128)]  # the last spans blocks
    cids = [r.cid for r in store.add_many(datas)]
    other = store.add(b"other").cid
    _corrupt(store, other)
    unknown = compute_cid(b"never stored")
    results = store.cat_many([cids[0], unknown, cids[2], other, cids[1]])
    assert results[0] == datas[0] and results[2] == datas[2] and results[4] == datas[1]
    assert isinstance(results[1], NotFound) and not isinstance(results[1], BlockMissing)
    assert isinstance(results[3], BlockCorrupted)
    assert store.cat_many([]) == []
