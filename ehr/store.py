"""The one module the records app uses to talk to storage: picks the backend from settings and turns
backend failures into domain errors (a node that is down is a 503, never a half-written record).

A write the store cannot take is a 503 too, nothing of it kept: `storage_full` (no space left: the disk,
a quota, a file-size limit), `storage_read_only` (reads still work) or `storage_unavailable`.

A read fails in one of three ways, kept apart because they call for different people:
- 503 `storage_unavailable`: the store cannot be read at all (node down, index unreadable, I/O error,
  the store's folder deleted under a running server). Retry later; nothing is known about the blob.
- 410 `missing`: the store works but the blob, or a block of it, is gone (deleted, pack file lost or cut
  short). Lost data: an operator restores it (backup, `ipfs_push` counterpart); not an attack.
- 409 `tampered`: the bytes are there but do not hash to their content address. Only this is tampering.
API messages are fixed sentences: backend errors name pack files, folders and node URLs, so they go to
the server log only.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from rest_framework import status

from ehr.storage import (
    BlockCorrupted,
    BlockMissing,
    CidMismatch,
    ContentStore,
    InvalidCid,
    KuboStore,
    LocalBlockStore,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from ehr.storage import NotFound as BlobNotFound
from healthhash.errors import DomainError, Unavailable

log = logging.getLogger(__name__)


class StoreUnavailable(Unavailable):
    code = "storage_unavailable"


class StoreFull(StoreUnavailable):
    """No space left for the blob: nothing was stored; an operator frees or adds space."""

    code = "storage_full"


class StoreReadOnly(StoreUnavailable):
    """The store answers reads but takes no writes (a read-only mount or folder)."""

    code = "storage_read_only"


class StoredBytesBroken(DomainError):
    """The stored bytes are present but fail verification against their content address: tampering."""

    code = "tampered"
    status_code = status.HTTP_409_CONFLICT


class StoredBytesMissing(DomainError):
    """The store works but no longer holds the bytes (all or part of them): lost data, not tampering."""

    code = "missing"
    status_code = status.HTTP_410_GONE


_UNAVAILABLE = "the record store is unavailable; try again later"
# What a backend may raise when the store itself cannot be used (sqlite3: the local index is gone).
_BACKEND_FAULTS = (StorageError, OSError, sqlite3.Error)


@lru_cache(maxsize=8)
def _store_for(api_url: str, local_dir: str, cid_version: int) -> ContentStore:
    if api_url:
        return KuboStore(api_url, cid_version=cid_version)
    return LocalBlockStore(Path(local_dir), cid_version=cid_version)


def content_store() -> ContentStore:
    """The configured backend: Kubo at IPFS_API_URL, else the local block store at IPFS_LOCAL_DIR."""
    # Keyed on the settings' values, read per call: tests point IPFS_LOCAL_DIR at a temporary folder.
    return _store_for(settings.IPFS_API_URL, str(settings.IPFS_LOCAL_DIR), settings.IPFS_CID_VERSION)


def add(data: bytes) -> str:
    """Store (and pin) sealed bytes; returns the CID."""
    return add_many([data])[0]


def add_many(datas: Sequence[bytes]) -> list[str]:
    """Store several sealed blobs, all or nothing (`ContentStore.add_many`); returns their CIDs in order."""
    try:
        return [result.cid for result in content_store().add_many(datas)]
    except StorageFull as exc:
        log.error("record store is full; %d blob(s) not stored: %s", len(datas), exc)
        raise StoreFull("the record store has no space left; the record was not stored") from exc
    except StorageReadOnly as exc:
        log.error("record store is read-only; %d blob(s) not stored: %s", len(datas), exc)
        raise StoreReadOnly("the record store is read-only; records can be read but not added") from exc
    except StorageUnavailable as exc:
        log.warning("record store unavailable on add: %s", exc)
        raise StoreUnavailable(_UNAVAILABLE) from exc
    except _BACKEND_FAULTS as exc:
        log.warning("record store failed to store %d blob(s): %s", len(datas), exc)
        raise StoreUnavailable("the record store failed to store the record; try again later") from exc


def cat(cid: str) -> bytes:
    """The stored bytes of `cid`, verified against the CID by the backend (see the module docstring)."""
    try:
        return content_store().cat(cid)
    except (BlockCorrupted, CidMismatch) as exc:
        log.error("stored bytes of %s fail verification: %s", cid, exc)
        raise StoredBytesBroken("the stored bytes do not match their content address") from exc
    except InvalidCid as exc:  # the row's CID was edited: the database, not the store, was altered
        raise StoredBytesBroken("the record's content address is not a valid CID") from exc
    except BlobNotFound as exc:
        log.error("stored bytes of %s are missing: %s", cid, exc)
        part = "part of the stored bytes is" if isinstance(exc, BlockMissing) else "the stored bytes are"
        raise StoredBytesMissing(f"{part} missing from the record store") from exc
    except _BACKEND_FAULTS as exc:
        log.warning("record store unavailable reading %s: %s", cid, exc)
        raise StoreUnavailable(_UNAVAILABLE) from exc


def remove_quietly(cids: Sequence[str]) -> None:
    """Best-effort cleanup of blobs no row references (after a failed create); never raises."""
    store = content_store()
    for cid in cids:
        try:
            store.remove(cid)
        except (StorageError, OSError):
            # Left for `collect_garbage` / the node's GC; the caller's own error is the one that matters.
            log.warning("could not remove unreferenced blob %s", cid, exc_info=True)
