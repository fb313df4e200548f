"""Record keys: seal content under a fresh data key wrapped by the KEK ring (settings.KEY_ENCRYPTION_KEYS),
open it again, and `rotate_kek`, which rewraps every KEK-sealed secret (healthhash.key_rotation) under the
active KEK without touching content.

All crypto is healthhash.sealing's; this module only fixes what each seal is bound to: the content's AAD
and the wrapped key's context both name the record id and the patient, so neither a sealed blob nor a
wrapped key copied onto another row opens.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from ehr.models import Record
from healthhash import key_rotation, sealing
from healthhash.errors import DomainError, Unavailable

log = logging.getLogger(__name__)


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
        # The detail (a file path, a malformed entry) is for the operator's log, never the API answer.
        log.error("the key-encryption key ring cannot be loaded: %s", exc)
        raise KeyUnavailableError(
            "the key-encryption keys are not available; the server's operator has been told why"
        ) from exc


def _aad(record_id: uuid.UUID, patient_address: str) -> bytes:
    return sealing.record_content_aad(record_id, patient_address)


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


def unwrap_data_key(*, wrapped_key: bytes, record_id: uuid.UUID, patient_address: str) -> bytes:
    """A record's data key in clear, for a dataset release sealed to a hospital (federated.release).

    Same errors as `open_content`. The caller must seal it before it leaves the process.
    """
    try:
        return sealing.unwrap_key(
            key_ring(), bytes(wrapped_key), context=_context(record_id, patient_address)
        )
    except sealing.KeyUnavailable as exc:
        raise KeyUnavailableError(
            f"the key-encryption key {exc.key_id!r} this record needs is not configured"
        ) from exc
    except sealing.SealBroken as exc:
        raise SealedContentBroken(f"the record's data key does not unwrap: {exc}") from exc


def register_sealed_columns() -> None:
    """Put record data keys into `rotate_kek` (called from EhrConfig.ready())."""
    key_rotation.register_sealed_column(
        key_rotation.SealedColumn(
            label="record data keys",
            model=Record,
            field="wrapped_key",
            context_fields=("patient_address",),
            context=lambda row: _context(row["pk"], row["patient_address"]),
            key_id_field="key_id",
        )
    )


def rotate_kek(
    *, batch_size: int = 500, say: Callable[[str], None] = lambda _: None
) -> key_rotation.RotationReport:
    """Rewrap every secret sealed under the KEK ring (record data keys, managed Ethereum keys, and any
    other registered column) under the active KEK, the first in KEY_ENCRYPTION_KEYS.

    Content and CIDs stay as they are. `report.remaining` counts, per old key id, the rows still
    sealed under it: an old id may be dropped from the ring only when that count is zero.
    """
    return key_rotation.rotate(ring=key_ring(), batch_size=batch_size, say=say)


def kek_census() -> dict[str, Counter[str]]:
    """Per sealed column, how many rows sit under each key id (for `rotate_kek --status`)."""
    key_ring()  # a missing or unreadable ring fails here as 503, as everywhere else
    return key_rotation.census()
