"""Verifying the access log: every patient's hash chain, every chain head, and every anchor batch (its
Merkle root over the anchored heads, and that root against the AuditRootAnchored event indexed from
the chain). A break is reported exactly: which patient, which seq, what was expected, what was found.

Fast path by design: rows arrive as tuples in large chunks (values_list), one sha256 per row over the
stored canonical bytes, no model instances (target >= 100,000 entries/s).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from access.audit.anchoring import Leaf, merkle_root, sort_leaves
from access.audit.log import GENESIS_HASH, AccessEvent, record_accesses
from access.models import AccessLogEntry, AuditAnchorBatch, AuditBatchStatus, AuditChainHead
from contracts.models import ChainEvent

CHUNK = 20_000


@dataclass(frozen=True)
class AuditBreak:
    # missing_entry | hash_mismatch | head_mismatch (chains); leaf_mismatch | root_mismatch |
    # anchor_missing | anchor_root_mismatch (anchor batches)
    kind: str
    patient: str | None
    seq: int | None
    expected: str
    found: str
    batch_id: str | None = None

    def __str__(self) -> str:
        where = f"patient {self.patient} seq {self.seq}" if self.patient else f"batch {self.batch_id}"
        if self.batch_id and self.patient:
            where += f" (batch {self.batch_id})"
        return f"{self.kind} at {where}: expected {self.expected}, found {self.found}"


@dataclass
class AuditReport:
    chains: int = 0
    entries: int = 0
    batches_checked: int = 0
    batches_pending: int = 0
    heads_anchored: int = 0
    elapsed_s: float = 0.0
    breaks: list[AuditBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.breaks)} BREAK(S)"
        return (
            f"{verdict}: {self.entries} entries in {self.chains} chains, "
            f"{self.batches_checked} anchored batches "
            f"({self.heads_anchored} heads), {self.batches_pending} batches waiting for the chain; "
            f"{self.elapsed_s:.3f} s ({self.entries_per_s:,.0f} entries/s)"
        )


class _ChainWalker:
    """Walks all entries in (patient, seq) order, one chain after the other; remembers each intact
    chain's last (seq, hash) for the head check, and the stored hashes the anchor batches name."""

    def __init__(self, report: AuditReport, wanted: set[tuple[str, int]]):
        self.report, self.wanted = report, wanted
        self.found: dict[tuple[str, int], bytes] = {}
        self.tails: dict[str, tuple[int, bytes] | None] = {}  # None: the chain broke
        self.patient: str | None = None
        self.prev, self.expect, self.broken = GENESIS_HASH, 1, False

    def walk(self, rows: Any) -> None:
        sha256 = hashlib.sha256
        for patient, seq, canonical, stored in rows:
            if patient != self.patient:
                self._finish()
                self.patient, self.prev, self.expect, self.broken = patient, GENESIS_HASH, 1, False
                self.report.chains += 1
            self.report.entries += 1
            if (patient, seq) in self.wanted:
                self.found[(patient, seq)] = bytes(stored)
            if self.broken:
                continue
            if seq != self.expect:
                self._break(
                    "missing_entry",
                    self.expect,
                    f"seq {self.expect}",
                    f"seq {seq} follows seq {self.expect - 1}",
                )
                continue
            computed = sha256(self.prev + canonical).digest()
            if computed != stored:
                self._break("hash_mismatch", seq, "0x" + bytes(stored).hex(), "0x" + computed.hex())
                continue
            self.prev, self.expect = computed, seq + 1
        self._finish()

    def _break(self, kind: str, seq: int, expected: str, found: str) -> None:
        self.report.breaks.append(AuditBreak(kind, self.patient, seq, expected, found))
        self.broken = True

    def _finish(self) -> None:
        if self.patient is not None:
            self.tails[self.patient] = None if self.broken else (self.expect - 1, self.prev)


def _entry_exists(patient: str, seq: int) -> bool:
    return AccessLogEntry.objects.filter(patient_address=patient, seq=seq).exists()


def _check_heads(report: AuditReport, tails: dict[str, tuple[int, bytes] | None]) -> None:
    """Heads are read AFTER the entries, without a lock, so writers keep going while we verify: a head
    ahead of the last entry seen is fine when the entries it adds exist now (appended meanwhile)."""
    seen: set[str] = set()
    rows = AuditChainHead.objects.filter(seq__gt=0).values_list("patient_address", "seq", "head_hash")
    for patient, seq, head_hash in rows.iterator(chunk_size=CHUNK):
        seen.add(patient)
        if patient in tails and tails[patient] is None:
            continue  # already reported where the chain broke
        last, last_hash = tails.get(patient) or (0, GENESIS_HASH)
        if seq > last and not _entry_exists(patient, last + 1):
            kind = "head_mismatch" if last else "missing_entry"
            found = f"last entry seq {last}" if last else "no entries"
            report.breaks.append(
                AuditBreak(kind, patient, last + 1, f"entries up to seq {seq} (head)", found)
            )
        elif seq == last and bytes(head_hash) != last_hash:
            report.breaks.append(
                AuditBreak(
                    "head_mismatch",
                    patient,
                    seq,
                    f"head 0x{bytes(head_hash).hex()}",
                    f"entry 0x{last_hash.hex()}",
                )
            )
        elif seq < last:
            report.breaks.append(
                AuditBreak("head_mismatch", patient, last, f"head at seq {seq}", f"entries up to seq {last}")
            )
    for patient in sorted(set(tails) - seen):
        report.breaks.append(AuditBreak("head_mismatch", patient, None, "a chain head row", "none"))


def _entry_rows(chunk: int):  # type: ignore[no-untyped-def]
    rows = (
        AccessLogEntry.objects.order_by("patient_address", "seq")
        .values_list("patient_address", "seq", "canonical", "entry_hash")
        .iterator(chunk_size=chunk)
    )
    # PostgreSQL hands bytea out as memoryview; bytes(...) only there, SQLite already gives bytes.
    for patient, seq, canonical, stored in rows:
        yield patient, seq, canonical if isinstance(canonical, bytes) else bytes(canonical), stored


def _batches() -> tuple[list[tuple[AuditAnchorBatch, list[Leaf]]], set[tuple[str, int]]]:
    leaves: dict[Any, list[tuple[int, Leaf]]] = defaultdict(list)
    from access.models import AuditAnchorLeaf

    for batch_pk, position, patient, seq, head_hash in AuditAnchorLeaf.objects.values_list(
        "batch_id", "position", "patient_address", "seq", "head_hash"
    ).iterator(chunk_size=CHUNK):
        leaves[batch_pk].append((position, Leaf(patient, seq, bytes(head_hash))))
    batches = [
        (batch, [leaf for _, leaf in sorted(leaves.get(batch.pk, []), key=lambda item: item[0])])
        for batch in AuditAnchorBatch.objects.exclude(status=AuditBatchStatus.FAILED)
    ]
    wanted = {(leaf.patient_address, leaf.seq) for _, batch_leaves in batches for leaf in batch_leaves}
    return batches, wanted


def _indexed_roots() -> dict[str, set[str]]:
    roots: dict[str, set[str]] = defaultdict(set)
    for args in ChainEvent.objects.filter(contract="Anchors", event="AuditRootAnchored").values_list(
        "args", flat=True
    ):
        roots[str(args["batchId"]).lower()].add(str(args["root"]).lower())
    return roots


def _check_batch(
    report: AuditReport, batch: AuditAnchorBatch, leaves: list[Leaf], found: dict, roots: dict
) -> None:
    def fail(kind: str, expected: str, got: str, leaf: Leaf | None = None) -> None:
        report.breaks.append(
            AuditBreak(
                kind,
                leaf.patient_address if leaf else None,
                leaf.seq if leaf else None,
                expected,
                got,
                batch.batch_id,
            )
        )

    for leaf in leaves:
        stored = found.get((leaf.patient_address, leaf.seq))
        if stored != leaf.head_hash:
            fail(
                "leaf_mismatch",
                f"anchored head 0x{leaf.head_hash.hex()}",
                f"entry 0x{stored.hex()}" if stored else "no entry",
                leaf,
            )
    recomputed = (
        "0x" + merkle_root([leaf.digest() for leaf in sort_leaves(leaves)]).hex() if leaves else "no leaves"
    )
    if recomputed != batch.root or len(leaves) != batch.head_count:
        fail(
            "root_mismatch",
            f"root {batch.root} over {batch.head_count} heads",
            f"root {recomputed} over {len(leaves)} heads",
        )
    if batch.status != AuditBatchStatus.ANCHORED:
        report.batches_pending += 1
        return
    report.batches_checked += 1
    report.heads_anchored += len(leaves)
    on_chain = roots.get(batch.batch_id.lower())
    if not on_chain:
        fail("anchor_missing", f"AuditRootAnchored({batch.batch_id}) indexed", "no event")
    elif batch.root.lower() not in on_chain:
        fail("anchor_root_mismatch", f"chain root {sorted(on_chain)[0]}", f"batch root {batch.root}")


def verify_audit(*, chunk: int = CHUNK) -> AuditReport:
    """Check every chain, head and anchor batch; the report lists each break (empty when all verify)."""
    started = time.perf_counter()
    report = AuditReport()
    # No long transaction: on SQLite (BEGIN IMMEDIATE) it would stop every writer for the whole run.
    # Batches, then entries (one streaming statement), then heads: each later read is a superset.
    batches, wanted = _batches()
    walker = _ChainWalker(report, wanted)
    walker.walk(_entry_rows(chunk))
    _check_heads(report, walker.tails)
    roots = _indexed_roots()
    for batch, leaves in batches:
        _check_batch(report, batch, leaves, walker.found, roots)
    report.elapsed_s = time.perf_counter() - started
    return report


class _Rollback(Exception):
    pass


def benchmark_verify(n_entries: int, *, patients: int = 1_000) -> dict[str, Any]:
    """Write n synthetic entries (spread over `patients` chains), verify everything, roll the entries back.

    Returns {"entries", "append_entries_per_s", "entries_per_s", "ok"}; entries_per_s counts every entry
    verified (the synthetic ones plus any already in the database).
    """
    patients = max(1, min(patients, n_entries))
    addresses = [
        "0x" + hashlib.sha256(f"bench-patient-{i}".encode()).hexdigest()[:40] for i in range(patients)
    ]
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            started = time.perf_counter()
            written = 0
            while written < n_entries:
                size = min(10_000, n_entries - written)
                record_accesses(
                    [_bench_event(addresses[(written + i) % patients], written + i) for i in range(size)]
                )
                written += size
            append_s = time.perf_counter() - started
            report = verify_audit()
            result = {
                "entries": report.entries,
                "append_entries_per_s": round(n_entries / append_s),
                "entries_per_s": round(report.entries_per_s),
                "ok": report.ok,
            }
            raise _Rollback
    except _Rollback:
        pass
    return result


def _bench_event(patient: str, i: int) -> AccessEvent:
    return AccessEvent(
        patient_address=patient,
        actor=None,
        actor_address="0x000000000000000000000000000000000000bEEF",
        action="open",
        purpose="TREATMENT",
        outcome="allowed",
        legal_basis=f"consent:00000000-0000-4000-8000-{i % 10**12:012d}@1",
        record_id=f"00000000-0000-4000-8000-{i % 10**12:012d}",
        reason="benchmark",
    )
