"""The id of an access-log anchor batch, and what it still tells once the database forgot the batch.

A database restored from an older backup loses the batches anchored since, leaves and all, while the chain
keeps their AuditRootAnchored(batchId, root, headCount) events; the contract takes nothing else. So the
batch id, which is ours to choose, carries what the writer needs to never hand out a sequence number that
a lost root may commit to with another entry (access/audit/log.py):

    bytes  0..2   b"HH\\x01"           tag and layout version
    bytes  3..7   max seq             the highest seq of any head in the batch (uint40 big-endian)
    bytes  8..23  patient filter      a 128-bit Bloom filter of the batch's patient addresses
    bytes 24..31  random              keeps ids unique (the contract's idempotency key)

Filter: for each patient, d = sha256(b"healthhash/audit-batch-filter" || address (20 bytes)); bits
d[0] % 128, d[1] % 128 and d[2] % 128 are set (bit i is bit (i % 8) of filter byte i // 8). A patient in
the batch always matches; one not in it matches by chance (~1% for 10 patients, most for a few hundred),
which costs only a needless skip of seq numbers, never a reuse. Ids without the tag (batches anchored
before this layout, or by hand) tell nothing: `decode` returns None.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

TAG = b"HH\x01"
_FILTER_BITS = 128
_FILTER_DOMAIN = b"healthhash/audit-batch-filter"
_MAX_SEQ = (1 << 40) - 1


def _filter_bits(patient_address: str) -> tuple[int, ...]:
    digest = hashlib.sha256(_FILTER_DOMAIN + bytes.fromhex(patient_address[2:])).digest()
    return tuple(digest[i] % _FILTER_BITS for i in range(3))


@dataclass(frozen=True)
class BatchIdSummary:
    """What a batch id says of its batch: the highest seq in it and which patients it may hold."""

    max_seq: int
    patient_filter: int  # the 128 filter bits as an int (bit i of byte j is bit 8*j + i)

    def may_hold(self, patient_address: str) -> bool:
        return all(self.patient_filter >> bit & 1 for bit in _filter_bits(patient_address))


def new_batch_id(heads: Iterable[tuple[str, int]]) -> str:
    """A fresh batch id (0x-hex, 32 bytes) for a batch of (patient address, seq) heads."""
    max_seq, bits = 0, 0
    for patient_address, seq in heads:
        max_seq = max(max_seq, seq)
        for bit in _filter_bits(patient_address):
            bits |= 1 << bit
    if max_seq > _MAX_SEQ:
        raise ValueError(f"seq {max_seq} does not fit the batch id's 40 bits")
    body = TAG + max_seq.to_bytes(5, "big") + bits.to_bytes(16, "little") + secrets.token_bytes(8)
    return "0x" + body.hex()


def decode(batch_id: str) -> BatchIdSummary | None:
    """The summary a batch id carries; None for an id without the tag."""
    try:
        raw = bytes.fromhex(batch_id.removeprefix("0x"))
    except ValueError:
        return None
    if len(raw) != 32 or raw[:3] != TAG:
        return None
    return BatchIdSummary(
        max_seq=int.from_bytes(raw[3:8], "big"), patient_filter=int.from_bytes(raw[8:24], "little")
    )
