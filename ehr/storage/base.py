"""The content-store interface every IPFS backend implements, its result values and its exceptions.

Callers (record services, the push command) depend on `ContentStore` only; `LocalBlockStore` and
`KuboStore` are the two implementations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """Base class of every error raised by the content stores."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached (node down, connection refused, timeout)."""


class StorageFull(StorageUnavailable):
    """The store has no room left (ENOSPC, a quota, a file-size limit): nothing was stored, and what the
    failed write had put down is gone again. Reads still work."""


class StorageReadOnly(StorageUnavailable):
    """The store can be read but not written (a read-only mount, permissions, an immutable folder)."""


class BlockCorrupted(StorageError):
    """Stored bytes are present but altered: a block does not hash to its CID, or the sizes a DAG node
    records do not match its children.

    Raised instead of returning data: corrupted or tampered bytes are never handed out.
    """


class CidMismatch(StorageError):
    """A remote node named different content than the CID computed locally for the same bytes."""


class NotFound(StorageError):
    """No object with that CID is stored (or pinned) in this store."""


class BlockMissing(NotFound):
    """The root is known but bytes it needs are gone: a linked block, or the pack file holding a block is
    deleted or cut short. Lost data, not altered data: kept apart from BlockCorrupted on purpose.
    Messages name CIDs, never files."""


class InvalidCid(StorageError, ValueError):
    """The string is not a CID this store can handle (CIDv0, or CIDv1 base32 dag-pb/raw sha2-256)."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """What `ContentStore.add` stored: the root CID, the file size in bytes and its block count."""

    cid: str
    size: int
    blocks: int


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """Size of a stored file, as `ContentStore.stat` reports it."""

    cid: str
    size: int


@runtime_checkable
class ContentStore(Protocol):
    """A store of immutable byte strings addressed by their Kubo-compatible CID."""

    def add(self, data: bytes, *, cid_version: int | None = None) -> AddResult:
        """Store and pin `data`; `cid_version` overrides the store's default (0 or 1)."""
        ...

    def add_many(self, datas: Sequence[bytes], *, cid_version: int | None = None) -> list[AddResult]:
        """Store and pin several blobs in one call; results come in the order of `datas`.

        All or nothing: if one add fails, the blobs this call already pinned are unpinned again
        and the error is raised (on a remote node that clean-up is best effort).
        """
        ...

    def cat(self, cid: str) -> bytes:
        """Return the bytes of `cid`, verified against the CID; raises NotFound (BlockMissing when only
        part of it is gone), BlockCorrupted."""
        ...

    def cat_many(self, cids: Sequence[str]) -> list[bytes | StorageError]:
        """Each file's bytes, or the error reading that file raised (as `cat` would), in the order of
        `cids`: one bad file does not hide the others. A store that cannot be used at all raises
        StorageUnavailable for the batch. For bulk readers (a training worker's dataset)."""
        ...

    def has(self, cid: str) -> bool:
        """True if `cid` is a pinned root of this store."""
        ...

    def stat(self, cid: str) -> ObjectStat:
        """Size of the file `cid`; raises NotFound."""
        ...

    def remove(self, cid: str) -> None:
        """Unpin `cid` (and, in the local store, delete blocks no other root references)."""
        ...

    def list_roots(self) -> Iterator[str]:
        """Every pinned root CID."""
        ...
