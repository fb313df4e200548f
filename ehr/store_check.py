"""`verify_store`: does the content store still hold every record's sealed bytes, unaltered, and nothing else?

Per record: its blob must be in the store, verify against its CID, and hash to the record's digest; the
anchored ones must also prove into the root the chain holds now (ehr.anchor_verify, one eth_call per
batch). Every root the store pins that no database row names (records, model versions, round updates:
any model field called `cid`) is an orphan: after a database restored from an older backup, the blobs of
the records uploaded since (their keys lived only in the database) are such orphans.

`repair_from` puts back missing blobs from a Kubo node: each file is fetched by `cat` (the node answers
from its own blocks, offline), re-chunked here and checked against the CID and the record's digest, and
only the blocks the local store lost are written (`LocalBlockStore.restore`). Altered bytes are never
overwritten: they are evidence, and stay reported as `tampered`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models

from contracts import client
from ehr import store
from ehr.anchor_verify import verify_records
from ehr.models import Record
from ehr.storage import (
    BlockCorrupted,
    CidMismatch,
    ContentStore,
    InvalidCid,
    KuboStore,
    LocalBlockStore,
    NotFound,
    StorageError,
    StorageUnavailable,
)
from ehr.storage.unixfs import parse_cid

# Finding kinds; all but `repaired` make the check fail.
MISSING, TAMPERED, UNREADABLE, ANCHOR, ORPHAN = "missing", "tampered", "unreadable", "anchor", "orphan"
REPAIRED, REPAIR_FAILED = "repaired", "repair_failed"
KINDS = (MISSING, TAMPERED, UNREADABLE, ANCHOR, ORPHAN, REPAIRED, REPAIR_FAILED)

_BATCH_BYTES = 64 * 1024 * 1024  # sealed bytes read per `cat_many` call


@dataclass(frozen=True)
class Finding:
    """One line of the report: what is wrong (or was repaired), about which record/batch/blob, and why."""

    kind: str
    subject: str  # a record id, a batch, or the CID of an orphan
    cid: str
    detail: str


@dataclass
class StoreReport:
    records_checked: int = 0
    blobs_ok: int = 0
    anchored_records_checked: int = 0
    anchors_checked: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.kind == REPAIRED for f in self.findings)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    def summary(self) -> dict[str, Any]:
        """The machine-readable result: every count, and `status` "ok" or "problems"."""
        return {
            "status": "ok" if self.ok else "problems",
            "records": self.records_checked,
            "blobs_ok": self.blobs_ok,
            "anchors_checked": self.anchors_checked,
            "anchored_records": self.anchored_records_checked,
            **{kind: self.count(kind) for kind in KINDS},
        }


class RepairUnsupported(Exception):
    """`repair_from` needs the local block store: a Kubo backend is repaired on the node itself."""


def check_store(*, anchors: bool = True, repair_from: str | None = None) -> StoreReport:
    """Check every record's blob (and anchor), list orphans, and optionally repair missing blobs.

    Raises StorageUnavailable (or a subclass) when the store cannot be read at all, RepairUnsupported
    when `repair_from` is given for a Kubo backend; a Kubo node that does not answer fails the repair
    of each blob, not the check.
    """
    content = store.content_store()
    if repair_from and not isinstance(content, LocalBlockStore):
        raise RepairUnsupported("--repair-from restores the local block store; this server uses Kubo")
    report = StoreReport()
    missing: list[Record] = []
    for batch in _record_batches():
        report.records_checked += len(batch)
        for record, result in zip(batch, content.cat_many([r.cid for r in batch]), strict=True):
            finding = _blob_finding(record, result)
            if finding is None:
                report.blobs_ok += 1
            else:
                report.findings.append(finding)
                if finding.kind == MISSING:
                    missing.append(record)
    if repair_from and missing:
        assert isinstance(content, LocalBlockStore)
        report.findings = [f for f in report.findings if f.kind != MISSING]
        repaired = _repair(content, KuboStore(repair_from), missing)
        report.findings += repaired
        report.blobs_ok += sum(1 for f in repaired if f.kind == REPAIRED)
    if anchors:
        _check_anchors(report)
    report.findings += _orphans(content)
    return report


def _record_batches() -> Iterator[list[Record]]:
    batch: list[Record] = []
    size = 0
    for record in Record.objects.order_by("created_at", "id").only("id", "cid", "digest", "sealed_size"):
        batch.append(record)
        size += record.sealed_size
        if size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _blob_finding(record: Record, result: bytes | StorageError) -> Finding | None:
    """None when the blob is there and hashes to the record's digest, else what is wrong with it."""
    subject = f"record {record.id}"
    if isinstance(result, bytes):
        if hashlib.sha256(result).hexdigest() == record.digest:
            return None
        return Finding(TAMPERED, subject, record.cid, "the blob does not hash to the record's digest")
    if isinstance(result, BlockCorrupted | CidMismatch):
        return Finding(TAMPERED, subject, record.cid, "the stored bytes do not match their content address")
    if isinstance(result, InvalidCid):
        return Finding(TAMPERED, subject, record.cid, "the record's content address is not a valid CID")
    if isinstance(result, NotFound):
        return Finding(MISSING, subject, record.cid, str(result))
    return Finding(UNREADABLE, subject, record.cid, f"{type(result).__name__}: {result}")


def _repair(local: LocalBlockStore, node: KuboStore, records: list[Record]) -> list[Finding]:
    """Restore each record's blob from `node`; a node that stops answering fails the rest at once (one
    timeout, not one per record). A local store that cannot take the bytes (full, read-only) raises."""
    findings: list[Finding] = []
    node_down = ""
    for record in records:
        try:
            if node_down:
                raise StorageUnavailable(node_down)
            data = node.cat(record.cid)  # verified against the CID by re-chunking
            if hashlib.sha256(data).hexdigest() != record.digest:
                raise CidMismatch("the node's bytes do not hash to the record's digest")
        except StorageUnavailable as exc:
            node_down = str(exc)
            findings += _not_repaired(record, exc)
            continue
        except (StorageError, ValueError) as exc:
            findings += _not_repaired(record, exc)
            continue
        blocks = local.restore(record.cid, data)
        if local.cat(record.cid) != data:
            raise StorageError(f"the restored blob of record {record.id} does not read back")
        restored = f"{blocks} block(s) restored from the node"
        findings.append(Finding(REPAIRED, f"record {record.id}", record.cid, restored))
    return findings


def _not_repaired(record: Record, exc: Exception) -> list[Finding]:
    subject = f"record {record.id}"
    return [
        Finding(MISSING, subject, record.cid, "not repaired"),
        Finding(REPAIR_FAILED, subject, record.cid, f"{type(exc).__name__}: {exc}"),
    ]


def _check_anchors(report: StoreReport) -> None:
    try:
        anchored = verify_records()
    except client.ChainUnavailable as exc:
        report.findings.append(Finding(ANCHOR, "chain", "", f"anchors NOT checked: {exc.detail}"))
        return
    report.anchors_checked = True
    report.anchored_records_checked = anchored.records_checked
    report.findings += [_anchor_finding(problem) for problem in anchored.problems]


def _anchor_finding(problem: str) -> Finding:
    """anchor_verify words its problems "record <id>: ..." or "batch <id>: ..."."""
    subject, _, detail = problem.partition(": ")
    if len(subject.split()) == 2 and detail:
        return Finding(ANCHOR, subject, "", detail)
    return Finding(ANCHOR, "anchors", "", problem)


def _orphans(content: ContentStore) -> list[Finding]:
    named = set()
    for value in _cids_named_in_the_database():
        try:
            named.add(str(parse_cid(value)))
        except (InvalidCid, ValueError):
            continue
    return [
        Finding(ORPHAN, "blob", root, "stored, but no database row names it")
        for root in content.list_roots()
        if root not in named
    ]


def _cids_named_in_the_database() -> Iterator[str]:
    """Every value of every model field called `cid` (or `*_cid`): records, and blobs other apps keep in
    the store (model versions, round updates) without this module importing them."""
    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            name = getattr(model_field, "name", "")
            if isinstance(model_field, models.CharField) and (name == "cid" or name.endswith("_cid")):
                yield from (
                    value
                    for value in model._default_manager.exclude(**{name: ""})
                    .values_list(name, flat=True)
                    .distinct()
                    if value
                )
