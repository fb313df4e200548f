"""The calldata layout of ConsentRegistry's signed structs: the one place that knows the packing.

SignedGrant / SignedRevoke are (patient, grantee, scopeHash, terms, r, vs) where `terms` packs, low bits
first, purpose [0,8) | expiresAt [8,72) | version [72,104) | deadline [104,168), and (r, vs) is the
EIP-2098 compact signature (vs = s with the parity bit of v in bit 255). Directory's Action is
(op, hospitalId, subject, admin, nonce, deadline). The messages of contracts.messages build these
tuples (`Grant.calldata(signature)`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

SignedConsentTuple = tuple[str, str, bytes, int, bytes, bytes]
DirectoryActionTuple = tuple[int, bytes, str, str, int, int]


@dataclass(frozen=True)
class Terms:
    """The small fields of a signed consent message, as packed into `terms`."""

    purpose: int
    expires_at: int
    version: int
    deadline: int


def pack_terms(*, purpose: int, expires_at: int, version: int, deadline: int) -> int:
    """purpose [0,8) | expiresAt [8,72) | version [72,104) | deadline [104,168); range-checked."""
    for value, bits, name in (
        (purpose, 8, "purpose"),
        (expires_at, 64, "expires_at"),
        (version, 32, "version"),
        (deadline, 64, "deadline"),
    ):
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{name} does not fit uint{bits}: {value}")
    return purpose | expires_at << 8 | version << 72 | deadline << 104


def unpack_terms(terms: int) -> Terms:
    """The inverse of pack_terms."""
    return Terms(
        purpose=terms & 0xFF,
        expires_at=(terms >> 8) & (2**64 - 1),
        version=(terms >> 72) & (2**32 - 1),
        deadline=(terms >> 104) & (2**64 - 1),
    )


def signature_bytes(signature: bytes | str) -> bytes:
    """A signature as bytes, from bytes or 0x-hex text (as the outbox stores it)."""
    if isinstance(signature, str):
        return bytes.fromhex(signature.removeprefix("0x"))
    return bytes(signature)


def compact_signature(signature: bytes) -> tuple[bytes, bytes]:
    """(r, vs) of a 65-byte r||s||v signature (v = 27/28 or 0/1), per EIP-2098.

    A high-s signature is normalised to its low-s twin (same signer), since the contract accepts only low s.
    """
    if len(signature) != 65:
        raise ValueError(f"expected a 65-byte signature, got {len(signature)}")
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    parity = v - 27 if v >= 27 else v
    if parity not in (0, 1):
        raise ValueError(f"bad recovery id v={v}")
    if s > _SECP256K1_HALF_N:
        s = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - s
        parity ^= 1
    vs = s | parity << 255
    return r, vs.to_bytes(32, "big")
