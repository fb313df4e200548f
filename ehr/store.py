"""The one module the records app uses to talk to storage: picks the backend from settings and turns
backend failures into domain errors (a node that is down is a 503, never a half-written record)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from rest_framework import status

from ehr.storage import (
    AddResult,
    BlockCorrupted,
    CidMismatch,
    ContentStore,
    KuboStore,
    LocalBlockStore,
    StorageError,
    StorageUnavailable,
)
from ehr.storage import NotFound as BlobNotFound
from healthhash.errors import DomainError, Unavailable

log = logging.getLogger(__name__)


class StoreUnavailable(Unavailable):
    code = "storage_unavailable"


class StoredBytesBroken(DomainError):
    """The store has no such object, or its bytes fail verification; callers treat it as tampering."""

    code = "tampered"
    status_code = status.HTTP_409_CONFLICT


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
    """Store several sealed blobs; in one batch where the backend can (the local store), else one by one.

    If one add fails, the ones already stored by this call are removed again before the error is raised.
    """
    store = content_store()
    try:
        if isinstance(store, LocalBlockStore):
            return [result.cid for result in store.add_many(datas)]
        added: list[AddResult] = []
        try:
            for data in datas:
                added.append(store.add(data))
        except BaseException:
            remove_quietly([result.cid for result in added])
            raise
        return [result.cid for result in added]
    except StorageUnavailable as exc:
        raise StoreUnavailable(f"the record store is unavailable: {exc}") from exc
    except (StorageError, OSError) as exc:
        raise StoreUnavailable(f"the record store failed to store the record: {exc}") from exc


def cat(cid: str) -> bytes:
    """The stored bytes of `cid`, verified against the CID by the backend."""
    try:
        return content_store().cat(cid)
    except StorageUnavailable as exc:
        raise StoreUnavailable(f"the record store is unavailable: {exc}") from exc
    except (BlockCorrupted, CidMismatch) as exc:
        raise StoredBytesBroken(f"stored bytes do not match their content address: {exc}") from exc
    except BlobNotFound as exc:
        raise StoredBytesBroken(f"the stored bytes are missing: {exc}") from exc


def remove_quietly(cids: Sequence[str]) -> None:
    """Best-effort cleanup of blobs no row references (after a failed create); never raises."""
    store = content_store()
    for cid in cids:
        try:
            store.remove(cid)
        except (StorageError, OSError):
            # Left for `collect_garbage` / the node's GC; the caller's own error is the one that matters.
            log.warning("could not remove unreferenced blob %s", cid, exc_info=True)
