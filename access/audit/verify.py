"""Verifying the access log: every patient's hash chain, every copied column against the hashed entry,
every chain head, and every anchor batch against the roots on the chain (access/audit/verify_anchors.py),
including the roots of batches a database restore lost (access/audit/verify_lost.py).
A break is reported exactly: which patient, which seq, what was expected, what was found.

What cannot be detected: deleting a patient's entries that no root on chain covers yet, together with
winding the head row back, leaves a consistent database that no check can tell from the truth until
those entries would have been anchored. The report counts that exposure ("N entries not yet anchored",
with the oldest one's age), and the database refuses UPDATE and DELETE on entries (triggers, see
access/migrations/0004_access_log_append_only.py); a break is reported when those triggers are missing.

Fast path by design: rows arrive as tuples in large chunks (values_list), one sha256 and one json.loads
per row over the stored canonical bytes, no model instances.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from access.audit.decisions import AccessDecision
from access.audit.log import GENESIS_HASH, AccessEvent, access_event, record_accesses
from access.audit.verify_anchors import check_anchors, load_anchors
from access.audit.verify_report import AuditBreak, AuditReport
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessPurpose,
    AuditChainHead,
    LegalBasis,
)

__all__ = ["AuditBreak", "AuditReport", "benchmark_verify", "verify_audit"]

CHUNK = 20_000
# The columns copied out of the hashed entry for queries and filters, each compared with the canonical bytes.
COPIED_COLUMNS = (
    "patient_address",
    "seq",
    "action",
    "outcome",
    "purpose",
    "legal_basis",
    "record_id",
    "actor_address",
    "actor_id",
    "reason",
    "detail",
    "created_at",
)
_ROW = ("patient_address", "seq", "canonical", "entry_hash", *COPIED_COLUMNS[2:])
_DETAIL, _CREATED_AT = len(_ROW) - 2, len(_ROW) - 1
_json_decode = json.JSONDecoder().decode
# The column check decodes every entry; orjson is the faster decoder (same run, 50k entries under load:
# 76k vs 63k and 57k vs 36k entries/s against json.loads).
_decode_canonical = orjson.loads
_APPEND_ONLY_TRIGGERS = {
    "sqlite": {"access_log_no_update", "access_log_no_delete"},
    "postgresql": {"access_log_no_update_or_delete"},
}


def _stored_at(value: Any) -> Any:
    """A raw created_at as canonical "at" text. PostgreSQL gives an aware datetime; SQLite a naive one in
    UTC (Django's declared-type converter), or the stored text "YYYY-MM-DD HH:MM:SS[.ffffff]" if that
    converter did not apply."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, str):
        if len(value) == 19:
            value += ".000000"
        return value.replace(" ", "T", 1) + "Z"
    return _iso(value)


def _stored_detail(value: Any) -> Any:
    return _json_decode(value) if isinstance(value, str) else value


def _iso(moment: Any) -> Any:
    """A created_at as the canonical "at" text (UTC, microseconds, Z), exactly as log.py writes it."""
    if not isinstance(moment, dt.datetime):
        return moment
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _hashed_columns(body: dict[str, Any]) -> tuple[Any, ...]:
    """The values the copied columns must hold, read from the canonical entry (in COPIED_COLUMNS order)."""
    actor = body.get("actor")
    if not isinstance(actor, dict):
        actor = {}
    return (
        body.get("patient"),
        body.get("seq"),
        body.get("action"),
        body.get("outcome"),
        body.get("purpose"),
        body.get("legal_basis"),
        body.get("record") or "",
        actor.get("address") or "",
        actor.get("id"),
        body.get("reason"),
        body.get("detail"),
        body.get("at"),
    )


class _ChainWalker:
    """Walks all entries in (patient, seq) order, one chain after the other.

    After a break it re-synchronises on the stored hash and goes on, so every later break of the same
    chain is reported too; after a gap (missing entries) the next link is checked against the entry
    before the gap, which is how the writer continues a chain past sequence numbers it must not reuse.
    Remembers each chain's last (seq, hash) for the head check, the stored hashes the anchor batches
    name, and the entries no root on chain covers yet.
    """

    def __init__(self, report: AuditReport, wanted: set[tuple[str, int]], proven: dict[str, int]):
        self.report, self.wanted, self.proven = report, wanted, proven
        self.found: dict[tuple[str, int], bytes] = {}
        self.tails: dict[str, tuple[int, bytes]] = {}
        self.patient: str | None = None
        self.prev, self.expect = GENESIS_HASH, 1
        self.oldest_unanchored: Any = None

    def walk(self, rows: Any) -> None:
        sha256 = hashlib.sha256
        for row in rows:
            patient, seq, canonical, stored = row[0], row[1], row[2], row[3]
            if patient != self.patient:
                self._finish()
                self.patient, self.prev, self.expect = patient, GENESIS_HASH, 1
                self.report.chains += 1
            self.report.entries += 1
            if not isinstance(stored, bytes):
                stored = self._stored_hash(stored, seq)
            if (patient, seq) in self.wanted:
                self.found[(patient, seq)] = stored
            if seq > self.proven.get(patient, 0):
                self._unanchored(row[_CREATED_AT])
            linked = seq == self.expect
            if not linked:
                self._break(
                    "missing_entry",
                    self.expect,
                    f"seq {self.expect}",
                    f"seq {seq} follows seq {self.expect - 1}",
                )
            data = self._canonical(canonical, seq)
            if data is not None:
                computed = sha256(self.prev + data).digest()
                if computed == stored or not linked:
                    self._check_columns(data, row)
                else:
                    self._break("hash_mismatch", seq, "0x" + stored.hex(), "0x" + computed.hex())
            self.prev, self.expect = stored, seq + 1
        self._finish()

    def _stored_hash(self, stored: Any, seq: int) -> bytes:
        if isinstance(stored, memoryview):  # PostgreSQL
            return bytes(stored)
        self._break(
            "malformed_entry", seq, "entry_hash stored as bytes", f"entry_hash {type(stored).__name__}"
        )
        return b""

    def _canonical(self, canonical: Any, seq: int) -> bytes | None:
        if isinstance(canonical, bytes):
            return canonical
        if isinstance(canonical, memoryview):  # PostgreSQL hands bytea out as memoryview
            return bytes(canonical)
        if isinstance(canonical, str):
            # Not how the writer stores it: report it, and go on with its UTF-8 bytes (they may verify).
            self._break("malformed_entry", seq, "canonical stored as bytes", "canonical stored as text")
            return canonical.encode()
        self._break("malformed_entry", seq, "canonical bytes", f"canonical {type(canonical).__name__}")
        return None

    def _check_columns(self, data: bytes, row: Any) -> None:
        seq = row[1]
        try:
            body = _decode_canonical(data)
        except ValueError:
            self._break("malformed_entry", seq, "canonical JSON", "bytes that are not JSON")
            return
        if not isinstance(body, dict):
            self._break("malformed_entry", seq, "canonical JSON object", type(body).__name__)
            return
        hashed = _hashed_columns(body)
        columns = (*row[:2], *row[4:_DETAIL], _stored_detail(row[_DETAIL]), _stored_at(row[_CREATED_AT]))
        if hashed == columns:
            return
        differing = [(n, h, c) for n, h, c in zip(COPIED_COLUMNS, hashed, columns, strict=True) if h != c]
        self._break(
            "column_mismatch",
            seq,
            ", ".join(f"{name}={h!r}" for name, h, _ in differing) + " (hashed)",
            ", ".join(f"{name}={c!r}" for name, _, c in differing) + " (columns)",
        )

    def _unanchored(self, created_at: Any) -> None:
        self.report.unanchored_entries += 1
        oldest = self.oldest_unanchored  # raw values: one database gives them all of one kind
        if oldest is None or (type(created_at) is type(oldest) and created_at < oldest):
            self.oldest_unanchored = created_at

    def _break(self, kind: str, seq: int, expected: str, found: str) -> None:
        self.report.breaks.append(AuditBreak(kind, self.patient, seq, expected, found))

    def _finish(self) -> None:
        if self.patient is not None:
            self.tails[self.patient] = (self.expect - 1, self.prev)


def _entry_exists(patient: str, seq: int) -> bool:
    return AccessLogEntry.objects.filter(patient_address=patient, seq=seq).exists()


def _check_heads(report: AuditReport, tails: dict[str, tuple[int, bytes]], proven: dict[str, int]) -> None:
    """Heads are read AFTER the entries, without a lock, so writers keep going while we verify: a head
    ahead of the last entry seen is fine when the entries it adds exist now (appended meanwhile).

    A head is also held to what was anchored of its chain: the seq its row says went into a batch, and
    the highest seq a root on chain covers. A head below either was wound back (a rollback or restore).
    """
    seen: set[str] = set()
    rows = AuditChainHead.objects.values_list("patient_address", "seq", "head_hash", "anchored_seq")
    for patient, seq, head_hash, anchored_seq in rows.iterator(chunk_size=CHUNK):
        seen.add(patient)
        floor = max(anchored_seq, proven.get(patient, 0))
        if seq < floor:
            report.breaks.append(
                AuditBreak(
                    "head_behind_anchor",
                    patient,
                    floor,
                    f"head at seq {floor} or later (anchored)",
                    f"head at seq {seq}",
                )
            )
        if seq == 0 and patient not in tails:
            continue
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


def _entry_rows(chunk: int) -> Iterator[tuple[Any, ...]]:
    """The entries as raw database rows, in (patient, seq) order, streamed in chunks.

    Raw, without Django's per-row converters: a datetime parse and a JSON decode per row cost more than
    the hash does, so created_at and detail are compared in the database's own representation
    (`_stored_at`, `_stored_detail`). chunked_cursor is what QuerySet.iterator uses (server-side on
    PostgreSQL), so memory stays flat whatever the log's size.
    """
    query = AccessLogEntry.objects.order_by("patient_address", "seq").values_list(*_ROW).query
    sql, params = query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows


def _check_append_only(report: AuditReport) -> None:
    """The triggers that make the log append-only must be in place (a SQLite table rebuild drops them)."""
    wanted = _APPEND_ONLY_TRIGGERS.get(connection.vendor)
    if not wanted:
        report.notes.append(f"No append-only triggers are known for the {connection.vendor} database.")
        return
    table = AccessLogEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND tgenabled <> 'D'", [table]
            )
        present = {name for (name,) in cursor.fetchall()}
    missing = sorted(wanted - present)
    if missing:
        report.breaks.append(
            AuditBreak(
                "append_only_off",
                None,
                None,
                f"triggers {', '.join(sorted(wanted))} refusing UPDATE and DELETE",
                f"missing or disabled: {', '.join(missing)}",
                None,
            )
        )


def _note_tail(report: AuditReport, oldest: Any) -> None:
    if oldest is not None:
        report.unanchored_since = str(_stored_at(oldest))
        try:
            since = dt.datetime.fromisoformat(report.unanchored_since.replace("Z", "+00:00"))
        except ValueError:  # a created_at edited into something else is reported as a column mismatch
            since = None
        if since is not None:
            report.unanchored_age_s = (timezone.now() - since).total_seconds()
    if report.unanchored_entries:
        report.notes.append(
            f"{report.unanchored_text()}: deleting them together with winding the head row back cannot be "
            "detected until they are anchored; the database's append-only triggers are what prevents it."
        )


def verify_audit(*, chunk: int = CHUNK) -> AuditReport:
    """Check every chain, column, head and anchor batch; the report lists each break (none: all verify)."""
    started = time.perf_counter()
    report = AuditReport()
    # No long transaction: on SQLite (BEGIN IMMEDIATE) it would stop every writer for the whole run.
    # The chain's roots, then batches, then entries (one streaming statement), then heads: each later read
    # is a superset of what the earlier ones saw.
    anchors = load_anchors(report)
    proven = anchors.proven_seqs()
    walker = _ChainWalker(report, anchors.wanted, proven)
    walker.walk(_entry_rows(chunk))
    _check_heads(report, walker.tails, proven)
    check_anchors(report, anchors, walker.found)
    _check_append_only(report)
    _note_tail(report, walker.oldest_unanchored)
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
    synthetic_id = f"00000000-0000-4000-8000-{i % 10**12:012d}"
    decision = AccessDecision(True, "consent", AccessPurpose.TREATMENT, LegalBasis.consent(synthetic_id, 1))
    return access_event(
        decision,
        patient_address=patient,
        actor=None,
        actor_address="0x000000000000000000000000000000000000bEEF",
        action=AccessAction.OPEN,
        record_id=synthetic_id,
        reason="benchmark",
    )
