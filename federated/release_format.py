"""The dataset release as it travels from the server to a hospital worker: what is sealed and how it is
read back. Django-free: the worker imports it without database credentials.

Wire format: `healthhash.sealing.seal_release` over UTF-8 compact JSON

    {"v": 2, "job": job_key, "hospital": account address, "pinned_block": n,
     "base_block": null | b, "removed": [uuid, ...],
     "records": [{"id": uuid, "patient": address, "cid": CID, "digest": sha256 hex of the sealed bytes,
                  "content_type": type, "key": base64 data key}, ...]}

bound (AAD) to job, hospital account and pinned block by `sealing.release_aad`, so a release replayed
for another job, hospital or round does not open.

A full release (`base_block` null) lists every record the hospital may use at the pinned block. A delta
(`base_block` b, asked for by a worker that holds the job's release at block b) lists only the records
added since b, with their keys, and the ids of the records no longer released (`removed`): the release
at the pinned block is the one at b, less `removed`, plus `records`. A round whose consents did not
change since the last one is a few hundred bytes, and no data key is unwrapped or sent twice.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from healthhash import sealing

FORMAT_VERSION = 2


class ReleaseBroken(Exception):
    """The release does not open with this key for this job, hospital and block, or is malformed."""


@dataclass(frozen=True, slots=True)
class ReleasedRecord:
    """One record of a release; `data_key` is secret (never log it)."""

    record_id: str
    patient_address: str
    cid: str
    digest: str
    content_type: str
    data_key: bytes

    def __repr__(self) -> str:
        return f"ReleasedRecord({self.record_id}, {self.patient_address}, {self.cid})"


@dataclass(frozen=True, slots=True)
class SealedRelease:
    """What the server hands a hospital worker: the sealed list and, in clear, only what the worker
    needs to open it (job, hospital, block) and counts; never a patient address or a key."""

    job_key: str
    hospital_slug: str
    hospital_account: str
    pinned_block: int
    record_count: int
    patient_count: int
    sealed_bytes: bytes


@dataclass(frozen=True, slots=True)
class ReleaseContents:
    """An opened release: `records` (with keys) and, for a delta, its base block and removed ids."""

    records: list[ReleasedRecord]
    base_block: int | None = None
    removed: tuple[str, ...] = ()

    @property
    def is_delta(self) -> bool:
        return self.base_block is not None


def seal_records(
    records: list[ReleasedRecord],
    *,
    job_key: str,
    hospital_account: str,
    pinned_block: int,
    public_key: bytes,
    base_block: int | None = None,
    removed: list[str] | None = None,
) -> bytes:
    """The sealed bytes of a release: the list under one fresh release key sealed to `public_key` (a
    delta from `base_block` when given: `records` are the added ones, `removed` the ids dropped)."""
    body = {
        "v": FORMAT_VERSION,
        "job": job_key,
        "hospital": hospital_account,
        "pinned_block": pinned_block,
        "base_block": base_block,
        "removed": sorted(removed or []),
        "records": [
            {
                "id": r.record_id,
                "patient": r.patient_address,
                "cid": r.cid,
                "digest": r.digest,
                "content_type": r.content_type,
                "key": base64.b64encode(r.data_key).decode("ascii"),
            }
            for r in records
        ],
    }
    plaintext = json.dumps(body, separators=(",", ":")).encode("utf-8")
    aad = sealing.release_aad(job_key=job_key, hospital_account=hospital_account, pinned_block=pinned_block)
    return sealing.seal_release(plaintext, public_key=public_key, aad=aad)


def open_records(
    sealed_bytes: bytes, *, private_key: bytes, job_key: str, hospital_account: str, pinned_block: int
) -> list[ReleasedRecord]:
    """The records of a full release; raises ReleaseBroken on any mismatch, or if it is a delta."""
    contents = open_contents(
        sealed_bytes,
        private_key=private_key,
        job_key=job_key,
        hospital_account=hospital_account,
        pinned_block=pinned_block,
    )
    if contents.is_delta:
        raise ReleaseBroken(f"the release is a delta from block {contents.base_block}, not a full one")
    return contents.records


def open_contents(
    sealed_bytes: bytes, *, private_key: bytes, job_key: str, hospital_account: str, pinned_block: int
) -> ReleaseContents:
    """Open a release with the hospital's private key; raises ReleaseBroken on any mismatch."""
    aad = sealing.release_aad(job_key=job_key, hospital_account=hospital_account, pinned_block=pinned_block)
    try:
        body = json.loads(sealing.open_release(sealed_bytes, private_key=private_key, aad=aad))
        if body["v"] != FORMAT_VERSION:
            raise ReleaseBroken(f"release format {body['v']!r} is not {FORMAT_VERSION}")
        base_block = body["base_block"]
        if base_block is not None and (isinstance(base_block, bool) or not isinstance(base_block, int)):
            raise ValueError("base_block")
        records = [
            ReleasedRecord(
                record_id=r["id"],
                patient_address=r["patient"],
                cid=r["cid"],
                digest=r["digest"],
                content_type=r["content_type"],
                data_key=base64.b64decode(r["key"], validate=True),
            )
            for r in body["records"]
        ]
        removed = tuple(str(record_id) for record_id in body["removed"])
        return ReleaseContents(records=records, base_block=base_block, removed=removed)
    except sealing.SealBroken as exc:
        raise ReleaseBroken(f"the release does not open: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ReleaseBroken(f"the release is malformed: {type(exc).__name__}") from None
