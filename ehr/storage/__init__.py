"""IPFS-compatible storage for sealed record bytes: one ContentStore interface, a local and a Kubo backend.

`LocalBlockStore` (embedded default, `var/ipfs`) and `KuboStore` (`IPFS_API_URL`) yield the same
CIDs Kubo's `ipfs add` gives; `push_all` copies the local store to a Kubo node.
"""

from __future__ import annotations

from ehr.storage.base import (
    AddResult,
    BlockCorrupted,
    BlockMissing,
    CidMismatch,
    ContentStore,
    InvalidCid,
    NotFound,
    ObjectStat,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from ehr.storage.blockstore import LocalBlockStore, benchmark_store
from ehr.storage.kubo import KuboStore, PushReport, push_all
from ehr.storage.unixfs import compute_cid

__all__ = [
    "AddResult",
    "BlockCorrupted",
    "BlockMissing",
    "CidMismatch",
    "ContentStore",
    "InvalidCid",
    "KuboStore",
    "LocalBlockStore",
    "NotFound",
    "ObjectStat",
    "PushReport",
    "StorageError",
    "StorageFull",
    "StorageReadOnly",
    "StorageUnavailable",
    "benchmark_store",
    "compute_cid",
    "push_all",
]
