"""The dataset release as it travels from the server to a hospital worker: what is sealed and how it is
read back. Django-free: the worker imports it without database credentials.

Wire format: `healthhash.sealing.seal_release` over UTF-8 compact JSON

    {"v": 1, "job": job_key, "hospital": account address, "pinned_block": n,
     "records": [{"id": uuid, "patient": address, "cid": CID, "digest": sha256 hex of the sealed bytes,
                  "content_type": type, "key": base64 data key}, ...]}

bound (AAD) to job, hospital account and pinned block by `sealing.release_aad`, so a release replayed
for another job, hospital or round does not open.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from healthhash import sealing

FORMAT_VERSION = 1


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


def seal_records(
    records: list[ReleasedRecord],
    *,
    job_key: str,
    hospital_account: str,
    pinned_block: int,
    public_key: bytes,
) -> bytes:
    """The sealed bytes of a release: the whole list under one fresh release key sealed to `public_key`."""
    body = {
        "v": FORMAT_VERSION,
        "job": job_key,
        "hospital": hospital_account,
        "pinned_block": pinned_block,
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
    """Open a release with the hospital's private key; raises ReleaseBroken on any mismatch."""
    aad = sealing.release_aad(job_key=job_key, hospital_account=hospital_account, pinned_block=pinned_block)
    try:
        body = json.loads(sealing.open_release(sealed_bytes, private_key=private_key, aad=aad))
        if body["v"] != FORMAT_VERSION:
            raise ReleaseBroken(f"release format {body['v']!r} is not {FORMAT_VERSION}")
        return [
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
    except sealing.SealBroken as exc:
        raise ReleaseBroken(f"the release does not open: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ReleaseBroken(f"the release is malformed: {type(exc).__name__}") from None
