"""The record store's part of GET /api/health (see healthhash/health.py): a small probe blob is written
(pinned), read back and verified, then removed, each step within the check's time budget. A store that
answers reads but refuses writes (a read-only folder, a full disk, a node without write access) is down:
records could not be created. Details name the backend only, never its folder or URL."""

from __future__ import annotations

import logging
import sqlite3

from django.conf import settings

from ehr import store
from ehr.storage import (
    ContentStore,
    KuboStore,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from healthhash.health import ComponentHealth

log = logging.getLogger(__name__)

# Always the same bytes (so the same CID); no sealed record can equal them (those are ciphertext).
PROBE = b"healthhash health probe\n"


def _store(timeout_s: float) -> ContentStore:
    if settings.IPFS_API_URL:
        # Not the shared store object: that one waits up to 30 s for a node, the check must not.
        return KuboStore(settings.IPFS_API_URL, cid_version=settings.IPFS_CID_VERSION, timeout=timeout_s)
    return store.content_store()


def check_store(timeout_s: float) -> ComponentHealth:
    kind = "kubo" if settings.IPFS_API_URL else "local block store"
    try:
        content_store = _store(timeout_s)
        cid = content_store.add(PROBE).cid
        try:
            read = content_store.cat(cid)
        finally:
            content_store.remove(cid)
    except StorageFull as exc:
        log.warning("health: record store is full: %s", exc)
        return ComponentHealth.down(f"{kind} is not writable or readable (no space left)")
    except StorageReadOnly as exc:
        log.warning("health: record store is read-only: %s", exc)
        return ComponentHealth.down(f"{kind} is not writable or readable (read-only: reads still work)")
    except StorageUnavailable as exc:
        log.warning("health: record store unreachable: %s", exc)
        return ComponentHealth.down(f"{kind} does not answer")
    except (StorageError, OSError, sqlite3.Error) as exc:
        log.warning("health: record store failed the write/read probe: %s", exc)
        return ComponentHealth.down(f"{kind} is not writable or readable ({type(exc).__name__})")
    if read != PROBE:
        return ComponentHealth.down(f"{kind} returned other bytes than it was given")
    return ComponentHealth.ok(f"{kind} answers a write, a read and a removal")
