"""Append-only pack files for the local block store: the blocks of one `add` written back to back
(`PackWriter`), and read back by digest through the store's index (`PackReader`).

Writes happen on one background thread, so the caller hashes block i+1 while block i is written
(hashlib and os.write both release the GIL). Where the filesystem allows it the file is opened
with O_DIRECT: sealed records are written once and seldom read back at once, so routing them
through the page cache only costs time (on the reference VM, fresh page-cache pages and per-file
creation made buffered one-file-per-block writes 3-8x slower than hashing the same bytes).
O_DIRECT needs aligned buffers and lengths, so blocks are staged contiguously in a 4 MiB
page-aligned buffer, written in aligned pieces, and the file is truncated to its real length at
the end. Filesystems without O_DIRECT (tmpfs) get one `writev` per block instead.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ehr.storage.base import BlockMissing
from ehr.storage.unixfs import CHUNK_SIZE, Block, Cid

_ALIGN = 4096
_STAGE = 4 * 1024 * 1024
_INLINE_LIMIT = 64 * 1024  # smaller packs are written on the caller's thread: a thread hop costs more


class PackWriter:
    """Writes one pack file at `path` (created exclusively); `append` returns each block's offset."""

    def __init__(self, path: Path, *, direct_io: bool, fsync: bool, expected_size: int) -> None:
        self.path = path
        self._fsync = fsync
        self._offset = 0  # bytes appended (what the index records)
        self._on_disk = 0  # bytes already written to the file while staging for O_DIRECT
        self._fill = 0
        self._stage: mmap.mmap | None = None
        self._pool = ThreadPoolExecutor(1, "pack-write") if expected_size > _INLINE_LIMIT else None
        self._pending: list[Future[None]] = []
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        self._direct = direct_io
        if direct_io:
            try:
                self._fd = os.open(path, flags | os.O_DIRECT, 0o444)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._direct = False
        if not self._direct:
            self._fd = os.open(path, flags, 0o444)

    @property
    def direct_io(self) -> bool:
        """False once the filesystem refused O_DIRECT (the store then stops trying)."""
        return self._direct

    def append(self, block: Block) -> int:
        offset = self._offset
        self._offset += block.size
        if self._pool is None:
            self._put(block.parts)
        else:
            self._pending.append(self._pool.submit(self._put, block.parts))
        return offset

    def close(self) -> None:
        """Flush, truncate to the real length, fsync if asked, and close; re-raises any write error."""
        try:
            self._drain()
            if self._direct:
                self._flush(final=True)
                os.ftruncate(self._fd, self._offset)
            if self._fsync:
                os.fsync(self._fd)
        finally:
            self._release()

    def abort(self) -> None:
        """Stop writing and delete the partial file."""
        try:
            self._drain()
        except OSError:
            pass
        finally:
            self._release()
            self.path.unlink(missing_ok=True)

    def _drain(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _release(self) -> None:
        """Close the file first, whatever happens to the stage: a descriptor left open on a pack that
        `abort` (or the store) deletes would keep its disk space allocated for the life of the process."""
        fd, self._fd = self._fd, -1
        stage, self._stage = self._stage, None
        try:
            if fd >= 0:
                os.close(fd)
        finally:
            if stage is not None:
                try:
                    stage.close()
                except BufferError:
                    # A failed write's traceback still holds a view of the stage; the mapping is
                    # freed with it. Raising here would hide the write's own error (ENOSPC).
                    pass

    def _put(self, parts: tuple[bytes | memoryview, ...]) -> None:
        if not self._direct:
            _writev_all(self._fd, list(parts))
            return
        if self._stage is None:
            # page aligned; room for a full stage plus the largest part (a chunk) plus an unaligned tail
            self._stage = mmap.mmap(-1, _STAGE + CHUNK_SIZE + 2 * _ALIGN)
        for part in parts:
            end = self._fill + len(part)
            if end > len(self._stage):
                self._flush(final=False)
                end = self._fill + len(part)
            self._stage[self._fill : end] = part
            self._fill = end
        if self._fill >= _STAGE:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        """Write the aligned prefix of the stage (all of it, zero-padded, when final)."""
        if self._stage is None or not self._fill:
            return
        length = -(-self._fill // _ALIGN) * _ALIGN if final else self._fill // _ALIGN * _ALIGN
        if not length:
            return
        with memoryview(self._stage) as view:
            try:
                written = os.write(self._fd, view[:length])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                written = -1
            if written != length:  # device wants larger alignment: finish with plain writes
                self._fall_back_to_buffered(view, max(written, 0))
                return
            tail = self._fill - length
            if tail > 0:
                view[:tail] = view[length : self._fill]
        self._on_disk += length
        self._fill = max(tail, 0)

    def _fall_back_to_buffered(self, view: memoryview, written: int) -> None:
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        os.lseek(self._fd, self._on_disk + written, os.SEEK_SET)
        _writev_all(self._fd, [view[written : self._fill]])
        self._direct = False
        self._fill = 0


def _writev_all(fd: int, parts: list[bytes | memoryview]) -> None:
    remaining = sum(len(p) for p in parts)
    while remaining:  # one writev in practice; a short write (e.g. a signal) continues
        written = os.writev(fd, parts)
        remaining -= written
        while parts and written >= len(parts[0]):
            written -= len(parts[0])
            parts = parts[1:]
        if parts and written:
            parts = [memoryview(parts[0])[written:], *parts[1:]]


class PackReader:
    """Reads blocks by digest through the index, keeping each pack open once per read."""

    def __init__(self, packs: Path, db: sqlite3.Connection) -> None:
        self._packs = packs
        self._db = db
        self._fds: dict[str, int] = {}

    def __enter__(self) -> PackReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in self._fds.values():
            os.close(fd)

    def has(self, cid: Cid) -> bool:
        return self._db.execute("SELECT 1 FROM blocks WHERE digest = ?", (cid.digest,)).fetchone() is not None

    def readable(self, cid: Cid) -> bool:
        """True if the block's bytes are there to read (whether or not they still hash to `cid`)."""
        try:
            self.load(cid)
        except BlockMissing:
            return False
        return True

    def load(self, cid: Cid) -> bytes:
        row = self._db.execute(
            "SELECT pack, offset, length FROM blocks WHERE digest = ?", (cid.digest,)
        ).fetchone()
        if row is None:
            raise BlockMissing(f"block {cid} linked from the DAG is missing")
        try:
            return self.read(*row)
        except BlockMissing as exc:
            # Errors name the block, never the pack file: they may travel up to an API answer. The
            # pack's name stays on the chained exception, for the server log.
            raise BlockMissing(f"block {cid} is missing from the store") from exc

    def read(self, pack: str, offset: int, length: int) -> bytes:
        fd = self._fds.get(pack)
        if fd is None:
            try:
                fd = self._fds[pack] = os.open(self._packs / pack, os.O_RDONLY)
            except FileNotFoundError:
                raise BlockMissing(f"pack {pack} is missing") from None
        data = os.pread(fd, length, offset)
        if len(data) != length:
            # The bytes are not there to compare: lost (a cut-short file), not altered.
            raise BlockMissing(f"pack {pack} is truncated")
        return data
