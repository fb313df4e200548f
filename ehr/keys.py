"""Record keys: seal content under a fresh data key wrapped by the KEK ring (settings.KEY_ENCRYPTION_KEYS),
open it again, and `rotate_kek`, which rewraps every data key under the active KEK without touching content.

All crypto is healthhash.sealing's; this module only fixes what each seal is bound to: the content's AAD
and the wrapped key's context both name the record id and the patient, so neither a sealed blob nor a
wrapped key copied onto another row opens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from ehr.models import Record
from healthhash import sealing
from healthhash.errors import DomainError, Unavailable


class KeyUnavailableError(Unavailable):
    code = "key_unavailable"


class SealedContentBroken(DomainError):
    """Content or wrapped key failed authentication: wrong KEK bytes, another row's key, or tampering."""

    code = "tampered"
    status_code = 409


@lru_cache(maxsize=4)
def _ring_for(spec: str) -> sealing.KeyRing:
    return sealing.KeyRing.from_setting(spec)


def key_ring() -> sealing.KeyRing:
    """The KEK ring; a missing or unreadable setting fails loudly as 503 key_unavailable."""
    try:
        return _ring_for(settings.KEY_ENCRYPTION_KEYS)
    except (ValueError, OSError) as exc:
        raise KeyUnavailableError(f"the key-encryption keys are not available: {exc}") from exc


def _aad(record_id: uuid.UUID, patient_address: str) -> bytes:
    return sealing.record_aad(str(record_id), patient_address.lower())


def _context(record_id: uuid.UUID, patient_address: str) -> bytes:
    return f"healthhash:record-key:v1:{record_id}:{patient_address.lower()}".encode("ascii")


@dataclass(frozen=True)
class SealedContent:
    sealed_bytes: bytes
    wrapped_key: bytes
    key_id: str


def seal_content(plaintext: bytes, *, record_id: uuid.UUID, patient_address: str) -> SealedContent:
    """Seal a record's plaintext under a fresh data key, wrapped with the active KEK."""
    ring = key_ring()
    sealed, wrapped = sealing.seal_with_new_key(
        plaintext,
        ring=ring,
        aad=_aad(record_id, patient_address),
        context=_context(record_id, patient_address),
    )
    return SealedContent(bytes(sealed), wrapped, ring.active_kid)


def open_content(
    sealed_bytes: bytes, *, wrapped_key: bytes, record_id: uuid.UUID, patient_address: str
) -> bytes:
    """Unwrap the data key and decrypt; KEK missing -> KeyUnavailableError, any mismatch -> broken."""
    ring = key_ring()
    try:
        data_key = sealing.unwrap_key(ring, bytes(wrapped_key), context=_context(record_id, patient_address))
        return sealing.open_sealed(sealed_bytes, data_key=data_key, aad=_aad(record_id, patient_address))
    except sealing.KeyUnavailable as exc:
        raise KeyUnavailableError(
            f"the key-encryption key {exc.key_id!r} this record needs is not configured"
        ) from exc
    except sealing.SealBroken as exc:
        raise SealedContentBroken(f"the record does not decrypt: {exc}") from exc


@dataclass
class RotationReport:
    active_kid: str
    rewrapped: int = 0
    already_current: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def rotate_kek(*, batch_size: int = 500, say: Callable[[str], None] = lambda _: None) -> RotationReport:
    """Rewrap every record's data key under the active KEK (the first in KEY_ENCRYPTION_KEYS).

    Content and CIDs stay as they are. Runs in small transactions while the app serves requests:
    each row is updated only if its wrapped key is still the one read (a conditional update), and a
    reader holding the old wrapped key still opens it as long as the old KEK stays in the ring. Rows
    whose KEK is missing or whose key fails authentication are reported, not skipped silently.
    """
    ring = key_ring()
    report = RotationReport(active_kid=ring.active_kid)
    report.already_current = Record.objects.filter(key_id=ring.active_kid).count()
    last_pk = None
    while True:
        rows = Record.objects.exclude(key_id=ring.active_kid).order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        batch = list(rows.values_list("pk", "patient_address", "wrapped_key")[:batch_size])
        if not batch:
            break
        last_pk = batch[-1][0]
        with transaction.atomic():
            for record_id, patient_address, wrapped in batch:
                try:
                    rewrapped = sealing.rewrap(
                        ring, bytes(wrapped), context=_context(record_id, patient_address)
                    )
                except sealing.SealingError as exc:
                    report.failed[str(record_id)] = str(exc)
                    continue
                report.rewrapped += Record.objects.filter(pk=record_id, wrapped_key=bytes(wrapped)).update(
                    wrapped_key=rewrapped, key_id=ring.active_kid
                )
        say(f"rewrapped {report.rewrapped} data keys so far")
    return report
