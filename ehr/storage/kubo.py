"""Kubo backend: a thin client for a Kubo node's HTTP RPC (`IPFS_API_URL`), and `push_all` to it.

Written on `requests` rather than `ipfshttpclient`: ipfshttpclient 0.7.0 (its last release) checks
the daemon version and raises VersionMismatch for every Kubo from 0.8.0 on, i.e. every node still
supported. This client needs only six endpoints, all POST (Kubo answers GET with 405), and checks
every CID the node reports against the one computed locally for the same bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ehr.storage.base import (
    AddResult,
    CidMismatch,
    ContentStore,
    NotFound,
    ObjectStat,
    StorageError,
    StorageUnavailable,
)
from ehr.storage.unixfs import CHUNK_SIZE, encode_file, parse_cid

log = logging.getLogger(__name__)

MIN_KUBO_VERSION = (0, 8, 0)
_NOT_FOUND_MARKERS = ("not found", "could not find", "not pinned", "no link named")


class KuboStore:
    """ContentStore over a Kubo node's RPC API; adds are pinned with Kubo's default importer settings.

    `cat` runs offline (`offline=true`): a CID this store never added answers NotFound at once
    instead of a network search that would end in a timeout.
    """

    def __init__(self, api_url: str, *, cid_version: int = 0, timeout: float = 30) -> None:
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self.api_url = api_url.rstrip("/")
        self.cid_version = cid_version
        self.timeout = timeout
        self._session = requests.Session()

    def version(self) -> str:
        """The node's Kubo version; raises StorageError if it is older than MIN_KUBO_VERSION."""
        version = str(self._json("version")["Version"])
        numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:3])
        if numbers < MIN_KUBO_VERSION:
            raise StorageError(
                f"Kubo {version} is older than the supported {'.'.join(map(str, MIN_KUBO_VERSION))}"
            )
        return version

    def add(self, data: bytes, *, cid_version: int | None = None) -> AddResult:
        """Add and pin `data`; raises CidMismatch if the node's CID differs from the local one."""
        version = self.cid_version if cid_version is None else cid_version
        expected = encode_file(data, cid_version=version)
        params = {
            "pin": "true",
            "cid-version": str(version),
            "raw-leaves": "true" if version == 1 else "false",
            "chunker": f"size-{CHUNK_SIZE}",
            "hash": "sha2-256",
            "trickle": "false",
            "inline": "false",
            "wrap-with-directory": "false",
        }
        response = self._post(
            "add", params=params, files={"file": ("blob", data, "application/octet-stream")}
        )
        entries = [json.loads(line) for line in response.iter_lines() if line.strip()]
        errors = [e for e in entries if e.get("Type") == "error"]
        added = [e for e in entries if "Hash" in e]
        if errors or not added:
            raise StorageError(
                f"Kubo add failed: {errors[0].get('Message') if errors else 'no Hash in reply'}"
            )
        reported = added[-1]["Hash"]
        if parse_cid(reported) != expected.root:
            raise CidMismatch(f"Kubo stored the bytes as {reported}, expected {expected.root}")
        return AddResult(cid=str(expected.root), size=expected.size, blocks=len(expected.blocks))

    def add_many(self, datas: Sequence[bytes], *, cid_version: int | None = None) -> list[AddResult]:
        """Add and pin each blob in turn; if one fails, unpin the ones added before it and re-raise.

        One `add` request per blob: a multipart `add` of several files makes Kubo pin the directory
        that holds them rather than each file. Kubo pins are not counted, so a rolled-back blob that
        was pinned before this call is unpinned too (sealed bytes never repeat: each has its own key).
        """
        added: list[AddResult] = []
        try:
            for data in datas:
                added.append(self.add(data, cid_version=cid_version))
        except BaseException:
            self._unpin_quietly([result.cid for result in added])
            raise
        return added

    def cat(self, cid: str) -> bytes:
        """The bytes of `cid`, re-encoded locally and checked against the CID (CidMismatch)."""
        parsed = parse_cid(cid)
        data = self._post("cat", params={"arg": str(parsed), "offline": "true"}).content
        if encode_file(data, cid_version=parsed.version).root != parsed:
            raise CidMismatch(f"Kubo returned bytes that do not hash to {cid}")
        return data

    def cat_many(self, cids: Sequence[str]) -> list[bytes | StorageError]:
        """Each file's bytes or its error, one `cat` after another; a node that is down fails the batch."""
        results: list[bytes | StorageError] = []
        for cid in cids:
            try:
                results.append(self.cat(cid))
            except StorageUnavailable:
                raise
            except StorageError as exc:
                results.append(exc)
        return results

    def has(self, cid: str) -> bool:
        """True if the node pins `cid` recursively."""
        try:
            keys = self._json("pin/ls", {"arg": str(parse_cid(cid)), "type": "recursive"})["Keys"]
        except NotFound:
            return False
        return any(parse_cid(key) == parse_cid(cid) for key in keys)

    def stat(self, cid: str) -> ObjectStat:
        """File size of `cid` as the node reports it (`files/stat`)."""
        parsed = parse_cid(cid)
        reply = self._json("files/stat", {"arg": f"/ipfs/{parsed}", "offline": "true"})
        return ObjectStat(cid=str(parsed), size=int(reply["Size"]))

    def remove(self, cid: str) -> None:
        """Unpin `cid`; the node's own garbage collector reclaims the blocks later."""
        self._json("pin/rm", {"arg": str(parse_cid(cid))})

    def list_roots(self) -> Iterator[str]:
        """Recursively pinned CIDs on the node (including pins this store did not make)."""
        return iter(sorted(self._json("pin/ls", {"type": "recursive"})["Keys"]))

    def _unpin_quietly(self, cids: Sequence[str]) -> None:
        for cid in cids:
            try:
                self.remove(cid)
            except StorageError:
                # The node's pin stays; the caller's own error is the one to report.
                log.warning("could not unpin %s after a failed add_many", cid, exc_info=True)

    def _json(self, endpoint: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        reply = self._post(endpoint, params=params).json()
        if not isinstance(reply, dict):
            raise StorageError(f"Kubo {endpoint} answered {reply!r}")
        return reply

    def _post(self, endpoint: str, **kwargs: Any) -> requests.Response:
        url = f"{self.api_url}/api/v0/{endpoint}"
        try:
            response = self._session.post(url, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise StorageUnavailable(f"Kubo RPC at {self.api_url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise _error_from(endpoint, response)
        return response


def _error_from(endpoint: str, response: requests.Response) -> StorageError:
    """Map Kubo's error reply ({"Message", "Code", "Type": "error"}) to a domain exception."""
    try:
        message = str(response.json()["Message"])
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or response.reason
    if any(marker in message.lower() for marker in _NOT_FOUND_MARKERS):
        return NotFound(f"Kubo {endpoint}: {message}")
    return StorageError(f"Kubo {endpoint} failed ({response.status_code}): {message}")


@dataclass
class PushReport:
    """Outcome of `push_all`: CIDs added to Kubo, already pinned there, and failures with reasons."""

    pushed: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def push_all(local: ContentStore, kubo: KuboStore) -> PushReport:
    """Copy every pinned root of `local` to `kubo`, keeping each root's CID version, and verify the CIDs.

    A root whose bytes fail verification locally or come back under another CID is reported in
    `failed` and the push goes on; an unreachable node (StorageUnavailable) stops it.
    """
    kubo.version()
    report = PushReport()
    for cid in local.list_roots():
        if kubo.has(cid):
            report.already_present.append(cid)
            continue
        try:
            result = kubo.add(local.cat(cid), cid_version=parse_cid(cid).version)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            report.failed[cid] = f"{type(exc).__name__}: {exc}"
            continue
        if parse_cid(result.cid) != parse_cid(cid):
            report.failed[cid] = f"CidMismatch: pushed as {result.cid}"
        else:
            report.pushed.append(cid)
    return report
