"""Embedded IPFS backend: a content-addressed block store on the local disk (the app uses `var/ipfs`).

Layout under `root`:
- `packs/<hh>/<random id>.pack`: the blocks one `add` newly stored, back to back (see
  `packfile`), sharded over 256 directories by the first two hex digits of the id.
- `index.sqlite3`: `pins` (root CID -> pin count, size), `blocks` (block digest -> pack, offset,
  length) and `refs` (root CID -> digest of every block of its DAG).

Why packs and not one file per block (Kubo's flatfs): on the reference VM creating a file costs
0.1-1 ms, so 256 files per 64 MiB cost more than hashing it; one pack per add keeps `add` near
hashing speed. Kubo's own pebble/badger datastores make the same trade. Every block is still
addressed by its digest and verified against it on every read.

Why a reference index: removing a root must keep blocks other roots share (a file that extends
another shares its leaves); a sweep over every root would make each removal O(store), and SQLite
gives crash-safe, multi-process (Celery workers) updates. `remove` drops one pin; at the last one
it drops the root's refs, forgets each of its blocks no other root references, and deletes every
pack left without live blocks, all in one write transaction (the unlinks right after commit).
`add` re-checks the blocks it reused under the same lock, so a concurrent removal can never take
a block a new root just referenced. A pack that still holds a live block shared with another root
keeps its dead bytes until `collect_garbage` rewrites it; packs orphaned by a crash are swept too.

Faults (see `faults`): a full disk is StorageFull and a store that cannot be written StorageReadOnly, both
after the partial pack is closed and deleted; reads keep working on a read-only store (the index is then
opened read-only, or immutable when SQLite cannot create its shared-memory file next to it). A missing
index is never silently re-created under a running store: only `LocalBlockStore()` creates one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.request import pathname2url

from ehr.storage.base import AddResult, CidMismatch, NotFound, ObjectStat, StorageError
from ehr.storage.faults import store_faults
from ehr.storage.packfile import PackReader, PackWriter
from ehr.storage.unixfs import (
    CODEC_RAW,
    Block,
    Cid,
    iter_blocks,
    parse_cid,
    read_file,
    root_size,
    verify_block,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (cid TEXT PRIMARY KEY, size INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (digest BLOB PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_pack ON blocks (pack);
CREATE TABLE IF NOT EXISTS refs (root TEXT NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (root, digest))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_digest ON refs (digest);
"""

_Location = tuple[bytes, str, int, int]  # digest, pack (relative path), offset, length

log = logging.getLogger(__name__)


class IndexLooksLost(StorageError):
    """Garbage collection refused: most packs on disk are unknown to the index (see collect_garbage)."""


class LocalBlockStore:
    """Kubo-compatible content store on local disk; see the module docstring for layout and GC.

    `fsync=True` makes each add's pack, its directory entry and the index commit durable before
    `add` returns; `fsync=False` leaves that to the OS (tests, benchmarks, throw-away demo data).
    `direct_io` writes packs with O_DIRECT where the filesystem supports it (see `packfile`).
    """

    def __init__(
        self, root: Path, *, cid_version: int = 0, fsync: bool = True, direct_io: bool = True
    ) -> None:
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self.root = Path(root)
        self.cid_version = cid_version
        self.fsync = fsync
        self._direct_io = direct_io
        self._packs = self.root / "packs"
        self._readers = threading.local()  # each thread's kept read connection (`_reading`)
        with store_faults(writing=False, index=self._index_path):
            self._open_or_create()

    # -- ContentStore -------------------------------------------------------------------------

    def add(self, data: bytes, *, cid_version: int | None = None) -> AddResult:
        """Store and pin `data` under the CID Kubo's `ipfs add` would give it."""
        return self.add_many([data], cid_version=cid_version)[0]

    def add_many(self, datas: Sequence[bytes], *, cid_version: int | None = None) -> list[AddResult]:
        """Store and pin several files at once: one pack, one index transaction, one fsync.

        For bulk imports, where a pack file and an fsync per small record would cost more than
        hashing it. All or nothing: if anything fails, none of them is pinned and the pack it was writing
        is closed and deleted; a full disk raises StorageFull, a read-only store StorageReadOnly.
        """
        with store_faults(writing=True, index=self._index_path):
            return self._add_many(datas, self.cid_version if cid_version is None else cid_version)

    def _add_many(self, datas: Sequence[bytes], version: int) -> list[AddResult]:
        reused: dict[bytes, Block] = {}
        written: list[_Location] = []
        written_digests: set[bytes] = set()
        roots: list[tuple[str, int, set[bytes]]] = []
        results: list[AddResult] = []
        writer = None
        with self._connect() as db:
            try:
                for data in datas:
                    seen: set[bytes] = set()
                    count = 0
                    for block in iter_blocks(data, cid_version=version):
                        count += 1
                        digest = block.cid.digest
                        if digest in seen:
                            continue
                        seen.add(digest)
                        if digest in written_digests or digest in reused:
                            continue
                        if db.execute("SELECT 1 FROM blocks WHERE digest = ?", (digest,)).fetchone():
                            reused[digest] = block
                            continue
                        if writer is None:
                            writer = self._new_pack(sum(len(d) for d in datas))
                        offset = writer.append(block)
                        written.append((digest, self._relative(writer.path), offset, block.size))
                        written_digests.add(digest)
                    roots.append((str(block.cid), len(data), seen))
                    results.append(AddResult(cid=str(block.cid), size=len(data), blocks=count))
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
        self._finish_pack(writer)
        try:
            self._index_added(roots, written, reused)
        except BaseException:
            if writer is not None:
                writer.path.unlink(missing_ok=True)
            raise
        return results

    def _index_added(
        self,
        roots: list[tuple[str, int, set[bytes]]],
        written: list[_Location],
        reused: dict[bytes, Block],
    ) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO pins (cid, size, count) VALUES (?, ?, 1) "
                "ON CONFLICT (cid) DO UPDATE SET count = count + 1",
                [(root, size) for root, size, _seen in roots],
            )
            db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?, ?)", written)
            # A removal that committed since our lookup may have dropped a block we reused; under
            # the write lock no other removal can, so store the lost ones again now.
            present = "SELECT 1 FROM blocks WHERE digest = ?"
            lost = [b for d, b in reused.items() if db.execute(present, (d,)).fetchone() is None]
            if lost:
                db.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?)", self._write_pack(lost))
            db.executemany(
                "INSERT OR IGNORE INTO refs VALUES (?, ?)",
                [(root, d) for root, _size, seen in roots for d in seen],
            )

    def cat(self, cid: str) -> bytes:
        """The file's bytes; every block is verified (BlockCorrupted), a missing root is NotFound and a
        missing or cut-short block under a known root is BlockMissing."""
        root = parse_cid(cid)
        with self._reading() as db, PackReader(self._packs, db) as reader:
            if not reader.has(root):
                raise NotFound(f"{cid} is not in the local store")
            return read_file(root, reader.load)

    def cat_many(self, cids: Sequence[str]) -> list[bytes | StorageError]:
        """Each file's bytes or its error, as `cat` would give them, over one index connection and one
        open per pack (a connection per `cat` costs ~0.5 ms, far more than reading a small record)."""
        results: list[bytes | StorageError] = []
        with self._reading() as db, PackReader(self._packs, db) as reader:
            for cid in cids:
                try:
                    root = parse_cid(cid)
                    if not reader.has(root):
                        raise NotFound(f"{cid} is not in the local store")
                    results.append(read_file(root, reader.load))
                except StorageError as exc:
                    results.append(exc)
        return results

    def has(self, cid: str) -> bool:
        """True if `cid` is a pinned root."""
        root = str(parse_cid(cid))
        with self._reading() as db:
            return db.execute("SELECT 1 FROM pins WHERE cid = ?", (root,)).fetchone() is not None

    def stat(self, cid: str) -> ObjectStat:
        """File size of a stored root, read from its (verified) root block."""
        root = parse_cid(cid)
        with self._reading() as db, PackReader(self._packs, db) as reader:
            if not reader.has(root):
                raise NotFound(f"{cid} is not in the local store")
            return ObjectStat(cid=str(root), size=root_size(root, reader.load(root)))

    def remove(self, cid: str) -> None:
        """Unpin one pin of `cid`; at the last one, delete the blocks no other pinned root uses."""
        root = str(parse_cid(cid))
        dead_packs: set[str] = set()
        with self._writing() as db:
            row = db.execute("SELECT count FROM pins WHERE cid = ?", (root,)).fetchone()
            if row is None:
                raise NotFound(f"{cid} is not pinned in the local store")
            if row[0] > 1:
                db.execute("UPDATE pins SET count = count - 1 WHERE cid = ?", (root,))
                return
            digests = [d for (d,) in db.execute("SELECT digest FROM refs WHERE root = ?", (root,))]
            db.execute("DELETE FROM pins WHERE cid = ?", (root,))
            db.execute("DELETE FROM refs WHERE root = ?", (root,))
            for digest in digests:
                if db.execute("SELECT 1 FROM refs WHERE digest = ? LIMIT 1", (digest,)).fetchone() is None:
                    pack = db.execute(
                        "DELETE FROM blocks WHERE digest = ? RETURNING pack", (digest,)
                    ).fetchone()
                    if pack is not None:
                        dead_packs.add(pack[0])
            dead_packs = {
                p
                for p in dead_packs
                if not db.execute("SELECT 1 FROM blocks WHERE pack = ? LIMIT 1", (p,)).fetchone()
            }
        # After commit: the index no longer names these packs, and new adds never write into old packs.
        for pack in dead_packs:
            (self._packs / pack).unlink(missing_ok=True)

    def list_roots(self) -> Iterator[str]:
        """Pinned roots in CID order."""
        with self._reading() as db:
            roots = [cid for (cid,) in db.execute("SELECT cid FROM pins ORDER BY cid")]
        return iter(roots)

    # -- maintenance --------------------------------------------------------------------------

    def restore(self, cid: str, data: bytes) -> int:
        """Put back the blocks of `cid` this store lost, from `data` (its file bytes, fetched elsewhere);
        return how many blocks were written. Raises CidMismatch unless `data` chunks to exactly `cid`.

        Only missing blocks (no index row, pack deleted or cut short) are rewritten; a block that is
        present is kept as it is, altered or not: altered bytes are evidence, for a person to look at.
        The root is pinned again if the store had forgotten it.
        """
        root = parse_cid(cid)
        blocks = list(iter_blocks(data, cid_version=root.version))
        if blocks[-1].cid != root:
            raise CidMismatch(f"the bytes fetched for {cid} chunk to {blocks[-1].cid}")
        unique = list({b.cid.digest: b for b in blocks}.values())
        with self._writing() as db, PackReader(self._packs, db) as reader:
            lost = [b for b in unique if not reader.readable(b.cid)]
            if lost:
                db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?)", self._write_pack(lost))
            db.execute(
                "INSERT INTO pins (cid, size, count) VALUES (?, ?, 1) ON CONFLICT (cid) DO NOTHING",
                (str(root), len(data)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO refs VALUES (?, ?)", [(str(root), b.cid.digest) for b in unique]
            )
        return len(lost)

    def collect_garbage(self, *, grace_seconds: float = 3600.0, force: bool = False) -> int:
        """Delete packs no index row names and compact packs holding dead bytes; return packs removed.

        Packs younger than `grace_seconds` are spared: an `add` in flight has written its pack but
        not yet committed its index rows. A crash leaves a few such packs beside many live ones; more
        unnamed packs than named ones means the index itself was lost or replaced (a restore, a deleted
        file), and deleting them would delete the store: IndexLooksLost, nothing deleted, unless `force`.
        """
        cutoff = time.time() - grace_seconds
        removed = 0
        with self._writing() as db:
            live = {p for (p,) in db.execute("SELECT DISTINCT pack FROM blocks")}
            unnamed = [
                path
                for path in self._packs.glob("*/*")
                if self._relative(path) not in live and path.stat().st_mtime <= cutoff
            ]
            if len(unnamed) > len(live) and not force:
                raise IndexLooksLost(
                    f"the store's index names {len(live)} packs and {len(unnamed)} others are on disk: "
                    "the index looks lost or replaced; nothing was deleted"
                )
            for path in unnamed:
                path.unlink(missing_ok=True)
                removed += 1
            for pack in live:
                removed += self._compact(db, pack)
        return removed

    # -- internals ----------------------------------------------------------------------------

    def _compact(self, db: sqlite3.Connection, pack: str) -> int:
        rows = db.execute("SELECT digest, offset, length FROM blocks WHERE pack = ?", (pack,)).fetchall()
        path = self._packs / pack
        if sum(length for _d, _o, length in rows) >= path.stat().st_size:
            return 0
        with PackReader(self._packs, db) as reader:
            blocks = [
                Block(Cid(1, CODEC_RAW, d), (reader.read(pack, offset, length),))
                for d, offset, length in rows
            ]
        for block in blocks:  # never copy a corrupted block into a fresh pack
            verify_block(block.cid, block.parts[0])
        moved = [(new_pack, offset, digest) for digest, new_pack, offset, _n in self._write_pack(blocks)]
        db.executemany("UPDATE blocks SET pack = ?, offset = ? WHERE digest = ?", moved)
        path.unlink()
        return 1

    def _new_pack(self, expected_size: int) -> PackWriter:
        stem = os.urandom(16).hex()
        shard = self._packs / stem[:2]
        shard.mkdir(exist_ok=True)
        path = shard / f"{stem}.pack"
        writer = PackWriter(path, direct_io=self._direct_io, fsync=self.fsync, expected_size=expected_size)
        self._direct_io = writer.direct_io
        return writer

    def _finish_pack(self, writer: PackWriter | None) -> None:
        if writer is None:
            return
        try:
            writer.close()
        except BaseException:
            writer.path.unlink(missing_ok=True)
            raise
        if self.fsync:
            fd = os.open(writer.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _write_pack(self, blocks: list[Block]) -> list[_Location]:
        writer = self._new_pack(sum(b.size for b in blocks))
        try:
            pack = self._relative(writer.path)
            locations = [(b.cid.digest, pack, writer.append(b), b.size) for b in blocks]
        except BaseException:
            writer.abort()
            raise
        self._finish_pack(writer)
        return locations

    def _relative(self, path: Path) -> str:
        return f"{path.parent.name}/{path.name}"

    def _open_or_create(self) -> None:
        """Create the folders and the index (schema, WAL mode) unless they exist; on a store that cannot be
        written, an existing index is enough: reads work without the lock file and the schema it guards."""
        try:
            self._packs.mkdir(parents=True, exist_ok=True)
            self._initialise_index()
        except (OSError, sqlite3.Error) as exc:
            if not (_is_refused_write(exc) and self._index_path.is_file()):
                raise
            log.warning("local block store opened read-only: %s", exc)

    def _initialise_index(self) -> None:
        """Schema and WAL mode, once per index file, under a file lock.

        WAL is a property of the file, so later connections need not set it; and switching the journal
        mode does not wait on the busy timeout: two stores opening one index at the same moment made
        the second fail at once with "database is locked".
        """
        with (self.root / "index.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                for attempt in range(50):
                    try:
                        with self._connect(mode="rwc") as db:
                            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                                db.execute("PRAGMA journal_mode=WAL")
                            db.executescript(_SCHEMA)
                        return
                    except sqlite3.OperationalError as exc:
                        # Writers of other store objects may hold the file while it is being opened.
                        if "locked" not in str(exc) or attempt == 49:
                            raise
                        time.sleep(0.02)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _connect(self, *, mode: str = "rw") -> contextlib.closing[sqlite3.Connection]:
        """A connection to the index; `mode=rw` (the default) never creates one where it was deleted."""
        return contextlib.closing(self._open_index(mode))

    def _open_index(self, mode: str) -> sqlite3.Connection:
        uri = f"file:{pathname2url(str(self._index_path.absolute()))}?mode={mode}"
        db = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA schema_version").fetchone()  # opens the file (and its WAL) now
            db.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'OFF'}")
        except BaseException:
            db.close()
            raise
        return db

    def _connect_for_reading(self) -> contextlib.closing[sqlite3.Connection]:
        """A read-write connection when the index allows one, else a read-only one.

        SQLite cannot open a WAL index read-only without creating its `-shm` file next to it, which a
        read-only folder forbids; `immutable=1` then reads the file as it is. That is sound only because
        nothing can write a store that we cannot write either (and every block is verified on read).
        """
        try:
            return self._connect()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_CANTOPEN or not self._index_path.is_file():
                raise
            try:
                return self._connect(mode="ro")
            except sqlite3.OperationalError:
                return self._connect(mode="ro&immutable=1")

    @property
    def _index_path(self) -> Path:
        return self.root / "index.sqlite3"

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """An index connection for reads; OS and SQLite faults in the block come out as StorageError.

        Each thread keeps its read-write connection between reads: opening one costs ~0.5 ms, more than
        reading a small record, and an open pays it on every request. It is dropped after any error and
        whenever the index file is not the one it opened (deleted, or replaced by a restore or a repair),
        so those are seen exactly as a fresh connection would see them. Read-only fallbacks are never
        kept (`immutable=1` would not see later writes).
        """
        with store_faults(writing=False, index=self._index_path):
            kept = self._kept_reader()
            if kept is None:
                with self._connect_for_reading() as db:
                    yield db
                return
            try:
                yield kept
            except BaseException:
                self._drop_reader()
                raise

    def _kept_reader(self) -> sqlite3.Connection | None:
        """This thread's kept read-write index connection (opened now if need be), or None when the index
        is missing or cannot be opened read-write (the caller then connects as before, and fails alike)."""
        try:
            stat = os.stat(self._index_path)
        except OSError:
            self._drop_reader()
            return None
        identity = (os.getpid(), stat.st_dev, stat.st_ino)  # a forked child opens its own
        kept = getattr(self._readers, "kept", None)
        if kept is not None and kept[0] == identity:
            return kept[1]
        self._drop_reader()
        try:
            db = self._open_index("rw")
        except sqlite3.OperationalError:
            return None
        self._readers.kept = (identity, db)
        return db

    def _drop_reader(self) -> None:
        kept = getattr(self._readers, "kept", None)
        self._readers.kept = None
        if kept is not None and kept[0][0] == os.getpid():
            kept[1].close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; faults come out as StorageFull, StorageReadOnly or StorageUnavailable."""
        with store_faults(writing=True, index=self._index_path), self._transaction() as db:
            yield db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _is_refused_write(exc: OSError | sqlite3.Error) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)


def benchmark_store(tmpdir: Path, size: int = 64 * 1024 * 1024) -> dict[str, float]:
    """Time `LocalBlockStore.add` and plain `hashlib.sha256` on the same `size` random bytes.

    Returns GB/s (10**9 bytes) figures measured in this run: store_add_gbps (fsync off),
    store_add_fsync_gbps (fsync on), cat_gbps (verified read) and sha256_gbps, plus their ratio.
    """
    data = os.urandom(size)
    started = time.perf_counter()
    hashlib.sha256(data).digest()
    sha_seconds = time.perf_counter() - started
    figures = {"size_bytes": float(size), "sha256_gbps": size / sha_seconds / 1e9}
    for label, fsync in (("store_add_gbps", False), ("store_add_fsync_gbps", True)):
        store = LocalBlockStore(Path(tmpdir) / label, fsync=fsync)
        started = time.perf_counter()
        cid = store.add(data).cid
        figures[label] = size / (time.perf_counter() - started) / 1e9
    started = time.perf_counter()
    if store.cat(cid) != data:
        raise AssertionError("benchmark read back different bytes")
    figures["cat_gbps"] = size / (time.perf_counter() - started) / 1e9
    figures["store_add_vs_sha256"] = figures["store_add_gbps"] / figures["sha256_gbps"]
    return figures
