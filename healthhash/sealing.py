"""The one crypto module: AES-256-GCM envelope encryption of record content and managed secrets.

Every encryption in HealthHash goes through here. Content is sealed with a per-record
data key; data keys (and managed Ethereum keys) are wrapped by key-encryption keys
(KEKs) held in a :class:`KeyRing` that lives outside the database and can be rotated
without touching content.

Wire formats (all integers big-endian)::

    sealed content  = version(1)=0x01 | nonce(12) | ciphertext(n) | tag(16)
        GCM key = data key, GCM AAD = version byte | caller's aad (see record_aad)

    wrapped key     = version(1)=0x01 | kid_len(1) | kid(kid_len, ASCII) | nonce(12)
                      | ciphertext | tag(16)
        GCM key = KEK[kid], GCM AAD = version | kid_len | kid | caller's context

    sealed to key, sealed release: ECIES on secp256k1, see "sealing to a public key" below.

Why AES-256-GCM for wrapping rather than AES-KW (RFC 3394): GCM takes associated
data, so a wrapped key is bound to its key id *and* to the caller's context (record id
and patient, or a user id for a managed key): a wrapped key copied onto another row
fails loudly instead of unwrapping. AES-KW has no AAD, a 64-bit integrity check, and
would need a second mechanism for that binding. The price is a 12-byte random nonce
per wrap; with random nonces one KEK stays well inside the NIST 2^32-invocation bound
for any realistic number of records and rotations.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coincurve import PrivateKey as CurvePrivateKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ecies import decrypt as ecies_decrypt
from ecies import encrypt as ecies_encrypt
from ecies.config import Config as ECIESConfig

__all__ = [
    "KEY_BYTES",
    "KeyRing",
    "KeyUnavailable",
    "SealBroken",
    "SealingError",
    "benchmark_sealing",
    "new_data_key",
    "new_kek_entry",
    "open_release",
    "open_sealed",
    "open_secret",
    "open_with_private_key",
    "public_key_of",
    "record_aad",
    "record_content_aad",
    "release_aad",
    "rewrap",
    "seal",
    "seal_release",
    "seal_secret",
    "seal_to_public_key",
    "seal_with_new_key",
    "unwrap_key",
    "wrap_key",
    "wrapped_key_id",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_V1 = 0x01
_VERSION_V1 = bytes([FORMAT_V1])
_SEAL_HEADER_BYTES = 1 + NONCE_BYTES
# A kid starts with an alphanumeric, so a KEK setting that starts with "/", "." or "~"
# can only be a file path (see KeyRing.from_setting).
_KID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RECORD_AAD_TAG = b"healthhash.record.v1"


class SealingError(Exception):
    """Base class of every failure raised by this module."""


class KeyUnavailable(SealingError):
    """The key-encryption key a wrapped key needs is not in the ring."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"key-encryption key {key_id!r} is not in the key ring")
        self.key_id = key_id


class SealBroken(SealingError):
    """Authentication failed or the sealed bytes are malformed: wrong key, wrong AAD or tampering."""


# --------------------------------------------------------------------------- key ring


class KeyRing:
    """Key-encryption keys by key id, with one active id used for new wraps.

    Immutable. Its repr and str name the key ids only, never key bytes.
    """

    __slots__ = ("_active_kid", "_keys")

    def __init__(self, keys: Mapping[str, bytes], *, active_kid: str) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        checked: dict[str, bytes] = {}
        for kid, key in keys.items():
            _check_kid(kid)
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes (AES-256), got {len(key)}")
            checked[kid] = bytes(key)
        if active_kid not in checked:
            raise ValueError(f"active key id {active_kid!r} is not in the ring")
        self._keys = checked
        self._active_kid = active_kid

    @classmethod
    def from_string(cls, spec: str, *, active_kid: str | None = None) -> KeyRing:
        """Parse ``"kid1:base64key,kid2:base64key"`` (commas or newlines; ``#`` comments).

        The first entry is active unless ``active_kid`` names another: to rotate, put
        the new key first. Errors name the entry and kid, never the key text.
        """
        keys: dict[str, bytes] = {}
        entries = [e.strip() for line in spec.splitlines() for e in line.split("#", 1)[0].split(",")]
        for position, entry in enumerate((e for e in entries if e), start=1):
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep:
                raise ValueError(f"key ring entry {position} is not of the form kid:base64key")
            _check_kid(kid)
            if kid in keys:
                raise ValueError(f"key id {kid!r} appears twice in the key ring")
            keys[kid] = _decode_key(kid, encoded.strip())
        if not keys:
            raise ValueError("the key ring setting holds no keys")
        return cls(keys, active_kid=active_kid or next(iter(keys)))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, active_kid: str | None = None) -> KeyRing:
        """Read a ring in the :meth:`from_string` format from a file (one entry a line is fine)."""
        return cls.from_string(Path(path).expanduser().read_text("utf-8"), active_kid=active_kid)

    @classmethod
    def from_setting(cls, value: str, *, active_kid: str | None = None) -> KeyRing:
        """Load from a setting that holds either the ring itself or a path to a file with it.

        A value starting with ``/``, ``.`` or ``~`` is a path (a kid cannot start so).
        """
        value = value.strip()
        if value.startswith(("/", ".", "~")):
            return cls.from_file(value, active_kid=active_kid)
        return cls.from_string(value, active_kid=active_kid)

    @property
    def active_kid(self) -> str:
        return self._active_kid

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def with_key(self, kid: str, key: bytes, *, make_active: bool = True) -> KeyRing:
        """A new ring with ``kid`` added (or replaced), active by default."""
        keys = {**self._keys, kid: key}
        return KeyRing(keys, active_kid=kid if make_active else self._active_kid)

    def without(self, kid: str) -> KeyRing:
        """A new ring without ``kid``; the active key cannot be removed."""
        if kid == self._active_kid:
            raise ValueError(f"cannot remove the active key {kid!r}")
        return KeyRing({k: v for k, v in self._keys.items() if k != kid}, active_kid=self._active_kid)

    def _key(self, kid: str) -> bytes:
        try:
            return self._keys[kid]
        except KeyError:
            raise KeyUnavailable(kid) from None

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._keys)!r}, active_kid={self._active_kid!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would put key bytes into caches, task queues or logs.
        raise TypeError("KeyRing cannot be pickled")


def _check_kid(kid: str) -> None:
    if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
        raise ValueError(
            "key id must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"
            f" (got a {len(kid) if isinstance(kid, str) else type(kid).__name__}-character value)"
        )


def _decode_key(kid: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        try:  # operators often paste URL-safe base64; accept it, still strictly
            key = base64.urlsafe_b64decode(_strict_urlsafe(encoded))
        except (binascii.Error, ValueError):
            raise ValueError(f"key {kid!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"key {kid!r} must decode to {KEY_BYTES} bytes (AES-256), got {len(key)}")
    return key


def _strict_urlsafe(encoded: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", encoded):
        raise ValueError("not url-safe base64")
    return encoded


def new_kek_entry(kid: str) -> str:
    """A fresh ``kid:base64key`` entry for a key ring setting (for ops and rotate_kek)."""
    _check_kid(kid)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


# --------------------------------------------------------------------------- content


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_BYTES)


def record_aad(record_id: str, patient: str) -> bytes:
    """Associated data binding sealed content to its record and patient.

    Each field is UTF-8 with a 4-byte length prefix, so no two (record, patient) pairs
    share an encoding. ``patient`` must be given in one canonical form by every caller
    (e.g. the lower-case address or the user id): it is not normalised here.
    """
    parts = [_RECORD_AAD_TAG, record_id.encode("utf-8"), patient.encode("utf-8")]
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def seal(plaintext: bytes | bytearray | memoryview, *, data_key: bytes, aad: bytes) -> bytearray:
    """Encrypt ``plaintext`` with AES-256-GCM under ``data_key``; see the module doc for the format.

    Returns a ``bytearray``: the header and ciphertext are written into one buffer, so a
    64 MiB record is not copied a second time just to prepend 13 header bytes.
    """
    cipher = _aesgcm(data_key, what="data key")
    nonce = secrets.token_bytes(NONCE_BYTES)
    full_aad = _VERSION_V1 + aad
    size = len(memoryview(plaintext).cast("B"))
    if hasattr(cipher, "encrypt_into"):  # cryptography >= 46: no copy at all
        sealed = bytearray(_SEAL_HEADER_BYTES + size + TAG_BYTES)
        sealed[0] = FORMAT_V1
        sealed[1:_SEAL_HEADER_BYTES] = nonce
        cipher.encrypt_into(nonce, plaintext, full_aad, memoryview(sealed)[_SEAL_HEADER_BYTES:])
        return sealed
    sealed = bytearray(_VERSION_V1 + nonce)
    sealed += cipher.encrypt(nonce, bytes(plaintext), full_aad)
    return sealed


def open_sealed(sealed: bytes | bytearray | memoryview, *, data_key: bytes, aad: bytes) -> bytes:
    """Decrypt bytes made by :func:`seal`; raises :class:`SealBroken` on any mismatch or tampering."""
    view = memoryview(sealed).cast("B")
    if len(view) < _SEAL_HEADER_BYTES + TAG_BYTES:
        raise SealBroken("sealed content is truncated")
    if view[0] != FORMAT_V1:
        raise SealBroken(f"sealed content has unknown format version {view[0]}")
    cipher = _aesgcm(data_key, what="data key")
    nonce = bytes(view[1:_SEAL_HEADER_BYTES])
    try:
        return cipher.decrypt(nonce, view[_SEAL_HEADER_BYTES:], _VERSION_V1 + aad)
    except InvalidTag:
        raise SealBroken(
            "sealed content failed authentication (wrong key, other record/patient, or tampered)"
        ) from None


def seal_with_new_key(
    plaintext: bytes | bytearray | memoryview, *, ring: KeyRing, aad: bytes, context: bytes
) -> tuple[bytearray, bytes]:
    """Seal under a fresh data key and wrap it with the active KEK: ``(sealed_bytes, wrapped_key)``."""
    data_key = new_data_key()
    return seal(plaintext, data_key=data_key, aad=aad), wrap_key(ring, data_key, context=context)


# --------------------------------------------------------------------------- key wrapping


def wrap_key(ring: KeyRing, data_key: bytes, *, context: bytes) -> bytes:
    """Wrap a 32-byte data key under the ring's active KEK, bound to ``context``."""
    if len(data_key) != KEY_BYTES:
        raise ValueError(f"a data key is {KEY_BYTES} bytes, got {len(data_key)}")
    return _wrap(ring, bytes(data_key), context=context)


def unwrap_key(ring: KeyRing, wrapped: bytes, *, context: bytes) -> bytes:
    """Recover a data key.

    Raises :class:`KeyUnavailable` if its KEK is not in the ring, :class:`SealBroken` if it fails auth.
    """
    data_key = _unwrap(ring, wrapped, context=context)
    if len(data_key) != KEY_BYTES:
        raise SealBroken("wrapped value is not a data key")
    return data_key


def rewrap(ring: KeyRing, wrapped: bytes, *, context: bytes) -> bytes:
    """Re-wrap under the active KEK (for ``rotate_kek``); content stays as it is.

    Works for wrapped data keys and for :func:`seal_secret` output alike. A value
    already under the active kid is verified and returned unchanged.
    """
    secret = _unwrap(ring, wrapped, context=context)
    if wrapped_key_id(wrapped) == ring.active_kid:
        return bytes(wrapped)
    return _wrap(ring, secret, context=context)


def wrapped_key_id(wrapped: bytes) -> str:
    """The KEK id a wrapped key (or sealed secret) was made with, without unwrapping it."""
    return _parse_wrapped(wrapped)[0]


def seal_secret(secret: bytes, *, ring: KeyRing, context: bytes) -> bytes:
    """Encrypt a small secret (e.g. a managed Ethereum private key) directly under the active KEK.

    Same format as a wrapped key, so :func:`rewrap` rotates it too. Use a context that
    names owner and purpose, e.g. ``b"managed-eth-key:" + user_id``.
    """
    if not secret:
        raise ValueError("nothing to seal")
    return _wrap(ring, bytes(secret), context=context)


def open_secret(sealed_secret: bytes, *, ring: KeyRing, context: bytes) -> bytes:
    """Decrypt :func:`seal_secret` output; same errors as :func:`unwrap_key`."""
    return _unwrap(ring, sealed_secret, context=context)


def _wrap(ring: KeyRing, secret: bytes, *, context: bytes) -> bytes:
    kid = ring.active_kid
    header = _VERSION_V1 + bytes([len(kid)]) + kid.encode("ascii")
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = AESGCM(ring._key(kid)).encrypt(nonce, secret, header + context)
    return header + nonce + body


def _unwrap(ring: KeyRing, wrapped: bytes, *, context: bytes) -> bytes:
    kid, header, nonce, body = _parse_wrapped(wrapped)
    cipher = AESGCM(ring._key(kid))
    try:
        return cipher.decrypt(nonce, body, header + context)
    except InvalidTag:
        raise SealBroken(
            f"wrapped key under {kid!r} failed authentication (wrong KEK bytes, other context, or tampered)"
        ) from None


def _parse_wrapped(wrapped: bytes) -> tuple[str, bytes, bytes, bytes]:
    data = bytes(wrapped)
    if len(data) < 2 or data[0] != FORMAT_V1:
        raise SealBroken("wrapped key has an unknown format")
    kid_end = 2 + data[1]
    if len(data) < kid_end + NONCE_BYTES + TAG_BYTES:
        raise SealBroken("wrapped key is truncated")
    try:
        kid = data[2:kid_end].decode("ascii")
    except UnicodeDecodeError:
        raise SealBroken("wrapped key has a malformed key id") from None
    if not _KID_RE.fullmatch(kid):
        raise SealBroken("wrapped key has a malformed key id")
    return kid, data[:kid_end], data[kid_end : kid_end + NONCE_BYTES], data[kid_end + NONCE_BYTES :]


def _aesgcm(key: bytes, *, what: str) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes (AES-256), got {len(key)}")
    return AESGCM(key)


# --------------------------------------------------------------------------- sealing to a public key
#
# For dataset releases (federated/release.py): a list sealed ONCE to a hospital's secp256k1 key.
#
#   sealed to key   = ephemeral public key(65, uncompressed) | nonce(16) | tag(16) | ciphertext
#       ECIES as eciespy 0.4 makes it: ECDH on secp256k1, key = HKDF-SHA256(ephemeral key(65) ||
#       shared point(65)), AES-256-GCM. Its settings are pinned below, so a changed library default
#       cannot change the wire format.
#   sealed release  = version(1)=0x01 | key_len(2) | sealed to key(fresh release key)(key_len)
#                     | sealed content (format above) of the list under the release key,
#                     GCM AAD = version byte | release_aad(job, hospital account, pinned block)
#
# Why a release key rather than ECIES over the whole list: the list is bound to its job, hospital and
# block by AAD (eciespy's AEAD takes none), and one key agreement covers any number of records.

_ECIES_CONFIG = ECIESConfig(
    elliptic_curve="secp256k1",
    is_ephemeral_key_compressed=False,
    is_hkdf_key_compressed=False,
    symmetric_algorithm="aes-256-gcm",
    symmetric_nonce_length=16,
)
_RELEASE_AAD_TAG = b"healthhash.release.v1"
_RELEASE_KEY_LEN_BYTES = 2


def public_key_of(private_key: bytes, *, compressed: bool = True) -> bytes:
    """The secp256k1 public key (33 bytes compressed, 65 uncompressed) of a 32-byte private key."""
    if len(private_key) != KEY_BYTES:
        raise ValueError(f"a secp256k1 private key is {KEY_BYTES} bytes, got {len(private_key)}")
    return CurvePrivateKey(bytes(private_key)).public_key.format(compressed=compressed)


def seal_to_public_key(plaintext: bytes, *, public_key: bytes) -> bytes:
    """ECIES-encrypt ``plaintext`` to a secp256k1 public key (33 or 65 bytes); see the format above."""
    return ecies_encrypt(bytes(public_key), bytes(plaintext), config=_ECIES_CONFIG)


def open_with_private_key(sealed: bytes, *, private_key: bytes) -> bytes:
    """Decrypt :func:`seal_to_public_key` output; another key or altered bytes raise :class:`SealBroken`."""
    if len(private_key) != KEY_BYTES:
        raise ValueError(f"a secp256k1 private key is {KEY_BYTES} bytes, got {len(private_key)}")
    if len(sealed) < 65 + 16 + TAG_BYTES:
        raise SealBroken("sealed-to-key bytes are truncated")
    try:
        return ecies_decrypt(bytes(private_key), bytes(sealed), config=_ECIES_CONFIG)
    except ValueError:  # MAC check failed, or the ephemeral key is not a curve point
        raise SealBroken("sealed-to-key bytes failed authentication (another key, or tampered)") from None


def record_content_aad(record_id: object, patient_address: str) -> bytes:
    """:func:`record_aad` in the canonical form every record seal uses (record id as text, lower-case
    address): ehr/keys.py seals with it and a hospital worker opens released records with it."""
    return record_aad(str(record_id), patient_address.lower())


def release_aad(*, job_key: str, hospital_account: str, pinned_block: int) -> bytes:
    """What a release is bound to; length-prefixed like :func:`record_aad`. The account is taken as
    given (callers pass the checksummed address)."""
    parts = [
        _RELEASE_AAD_TAG,
        job_key.encode("utf-8"),
        hospital_account.encode("ascii"),
        b"%d" % pinned_block,
    ]
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def seal_release(plaintext: bytes, *, public_key: bytes, aad: bytes) -> bytes:
    """Seal a whole release list to ``public_key``: one ECIES of a fresh release key, then AES-256-GCM."""
    release_key = new_data_key()
    sealed_key = seal_to_public_key(release_key, public_key=public_key)
    body = seal(plaintext, data_key=release_key, aad=aad)
    return _VERSION_V1 + struct.pack(">H", len(sealed_key)) + sealed_key + bytes(body)


def open_release(sealed_release: bytes, *, private_key: bytes, aad: bytes) -> bytes:
    """Open :func:`seal_release` output; another key, other AAD or altered bytes raise :class:`SealBroken`."""
    view = memoryview(sealed_release).cast("B")
    header = 1 + _RELEASE_KEY_LEN_BYTES
    if len(view) < header or view[0] != FORMAT_V1:
        raise SealBroken("sealed release has an unknown format")
    (key_len,) = struct.unpack(">H", view[1:header])
    if len(view) < header + key_len:
        raise SealBroken("sealed release is truncated")
    release_key = open_with_private_key(bytes(view[header : header + key_len]), private_key=private_key)
    if len(release_key) != KEY_BYTES:
        raise SealBroken("sealed release carries no release key")
    return open_sealed(view[header + key_len :], data_key=release_key, aad=aad)


# --------------------------------------------------------------------------- benchmark


def benchmark_sealing(size: int = 64 * 1024 * 1024, *, repeats: int = 5) -> dict[str, float]:
    """Throughput of :func:`seal` against raw OpenSSL and pycryptodome AES-256-GCM, same run.

    GB/s are 10^9 bytes per second, best of ``repeats``; 4 KiB figures are mean µs per call
    over the best of ``repeats`` batches of 2,000.
    """
    results = {"size_bytes": float(size)}
    results.update(_gcm_timings(os.urandom(size), repeats=repeats, batch=1, unit="gbps"))
    results.update(_gcm_timings(os.urandom(4096), repeats=repeats, batch=2000, unit="4k_us"))
    return results


def _gcm_timings(buffer: bytes, *, repeats: int, batch: int, unit: str) -> dict[str, float]:
    from Crypto.Cipher import AES  # benchmark-only comparison; not on the hot path

    key, aad = new_data_key(), record_aad("bench-record", "bench-patient")
    raw = AESGCM(key)
    # One nonce reused across timing runs: acceptable only because this key is thrown away.
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = seal(buffer, data_key=key, aad=aad)
    actions = {
        "seal": lambda: seal(buffer, data_key=key, aad=aad),
        "open": lambda: open_sealed(sealed, data_key=key, aad=aad),
        "openssl_gcm": lambda: raw.encrypt(nonce, buffer, aad),
        "pycryptodome_gcm": lambda: AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(buffer),
    }
    timings = {}
    for name, action in actions.items():
        seconds = _best(action, repeats=repeats, batch=batch) / batch
        value = len(buffer) / seconds / 1e9 if unit == "gbps" else seconds * 1e6
        timings[f"{name}_{unit}"] = value
    return timings


def _best(action: Callable[[], object], *, repeats: int, batch: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(batch):
            action()
        best = min(best, time.perf_counter() - started)
    return best
