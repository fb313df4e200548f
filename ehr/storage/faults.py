"""What the local block store's disk and index faults mean, as StorageError values that name no file.

The operating system and SQLite say "No space left on device: '/srv/var/ipfs/packs/..'" or "unable to
open database file"; callers need to know whether the store is full, read-only or unusable, and API
answers must never carry a server path. `store_faults` turns both kinds of error into `StorageFull`,
`StorageReadOnly` or `StorageUnavailable` with fixed sentences, keeping the original as the chained
cause for the server log. Errors that are already StorageError values (BlockMissing, BlockCorrupted,
NotFound) pass through untouched.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ehr.storage.base import StorageError, StorageFull, StorageReadOnly, StorageUnavailable

# EFBIG (a file-size limit) is a lack of room as much as ENOSPC and EDQUOT are.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

FULL = "the record store has no space left"
READ_ONLY = "the record store is read-only"


def translate(exc: OSError | sqlite3.Error, *, writing: bool, index: Path) -> StorageError:
    """The StorageError an OS or SQLite error stands for; `index` is the store's index file."""
    if isinstance(exc, OSError):
        if exc.errno in _NO_ROOM:
            return StorageFull(FULL)
        if writing and exc.errno in _NOT_WRITABLE:
            return StorageReadOnly(READ_ONLY)
        name = errno.errorcode.get(exc.errno or 0, "I/O error")
        return StorageUnavailable(f"the record store cannot be used ({name})")
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    if code == sqlite3.SQLITE_FULL:
        return StorageFull(FULL)
    if code == sqlite3.SQLITE_READONLY:
        return StorageReadOnly(READ_ONLY)
    if code == sqlite3.SQLITE_CANTOPEN:
        # SQLite says the same for a deleted index and one it may not open for writing.
        if writing and index.is_file():
            return StorageReadOnly(READ_ONLY)
        return StorageUnavailable("the record store's index cannot be opened")
    name = getattr(exc, "sqlite_errorname", "error")
    return StorageUnavailable(f"the record store's index failed ({name})")


@contextlib.contextmanager
def store_faults(*, writing: bool, index: Path) -> Iterator[None]:
    """Re-raise OS and SQLite errors from the block as the StorageError they stand for."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise translate(exc, writing=writing, index=index) from exc
