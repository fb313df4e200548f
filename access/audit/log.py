"""The access log's write side: every open, denial, list, export, creation and break-glass becomes an
entry in the patient's append-only, hash-chained log.

Chain rule (what access/audit/verify.py checks):
    entry_hash(1) = sha256(32 zero bytes || canonical(1))
    entry_hash(n) = sha256(entry_hash(n-1) || canonical(n))
where canonical(n) is the entry as compact JSON with sorted keys, ASCII only (`canonical_bytes`). It
carries the patient address and seq, so a row moved to another chain or position no longer verifies.
The bytes are stored as they were hashed; verification never re-encodes.

A (patient, seq) names one entry for good, also across a database restore: a seq that may have gone into
an anchored batch is never handed out again, the writer skips past it (`_skip_anchored_seqs`). What the
database still holds of its batches gives the exact seqs; of a batch the restore lost, only the chain's
event is left, whose id carries the batch's highest seq and a filter of its patients
(access/audit/batch_ids.py; the indexer keeps such events as AuditLostBatch rows). A patient the filter
matches skips to that highest seq: the lost seqs are never reused, at worst more are skipped than lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from access.audit import anchoring
from access.audit.batch_ids import decode as decode_batch_id
from access.audit.decisions import AccessDecision
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditAnchorBatch,
    AuditAnchorLeaf,
    AuditBatchStatus,
    AuditChainHead,
    AuditLostBatch,
    LegalBasis,
    User,
)
from contracts import indexer
from healthhash.errors import DomainError
from healthhash.eth_address import checksummed_address

logger = logging.getLogger(__name__)

GENESIS_HASH = b"\x00" * 32
CANONICAL_VERSION = 1
PURPOSES = tuple(AccessPurpose.values)
_BULK_BATCH = 2_000
_LOCK_CHUNK = 500


class BadAccessEvent(DomainError):
    code = "bad_access_event"


@dataclass(frozen=True)
class AccessEvent:
    """What happened, as the caller knows it; seq, time and hashes are added by `record_access`."""

    patient_address: str
    actor: User | None
    actor_address: str
    action: AccessAction
    purpose: AccessPurpose
    outcome: AccessOutcome
    legal_basis: LegalBasis  # a plain str of the same form is accepted (checked by `record_accesses`)
    record_id: str | None = None
    reason: str = ""
    detail: dict | None = None


def access_event(
    decision: AccessDecision,
    *,
    patient_address: str,
    actor: User | None,
    action: AccessAction,
    outcome: AccessOutcome | None = None,
    record_id: object | None = None,
    reason: str = "",
    detail: dict | None = None,
    actor_address: str | None = None,
) -> AccessEvent:
    """The access-log event for a decision: its purpose and legal basis, the outcome it implies
    (allowed / denied; pass ERROR for an integrity failure) and the actor's address."""
    if outcome is None:
        outcome = AccessOutcome.ALLOWED if decision.allowed else AccessOutcome.DENIED
    if actor_address is None:
        actor_address = (actor.eth_address if actor is not None else "") or ""
    return AccessEvent(
        patient_address=patient_address,
        actor=actor,
        actor_address=actor_address,
        action=action,
        purpose=decision.purpose,
        outcome=outcome,
        legal_basis=decision.legal_basis,
        record_id=str(record_id) if record_id else None,
        reason=reason,
        detail=detail,
    )


def log_decision(decision: AccessDecision, **event: Any) -> AccessLogEntry:
    """Append the entry for one decision (keywords as for `access_event`), in the caller's transaction."""
    return record_access(access_event(decision, **event))


def canonical_bytes(*, patient: str, seq: int, at: str, actor: dict[str, Any], event: AccessEvent) -> bytes:
    """The bytes an entry's hash commits to (version 1 layout; document any change as version 2)."""
    body = {
        "v": CANONICAL_VERSION,
        "patient": patient,
        "seq": seq,
        "at": at,
        "actor": actor,
        # str(): the enums and LegalBasis are written as their plain text, exactly as in version 1.
        "action": str(event.action),
        "purpose": str(event.purpose),
        "outcome": str(event.outcome),
        "legal_basis": str(event.legal_basis),
        "record": str(event.record_id) if event.record_id else None,
        "reason": event.reason,
        "detail": event.detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


@lru_cache(maxsize=65536)
def _address(value: str, field: str) -> str:
    return checksummed_address(value, field=field, error=BadAccessEvent)


def _check(event: AccessEvent) -> None:
    if event.action not in AccessAction.values:
        raise BadAccessEvent(f"unknown action {event.action!r}", field="action")
    if event.outcome not in AccessOutcome.values:
        raise BadAccessEvent(f"unknown outcome {event.outcome!r}", field="outcome")
    if event.purpose not in PURPOSES:
        raise BadAccessEvent(f"unknown purpose {event.purpose!r}", field="purpose")
    if not event.legal_basis:
        raise BadAccessEvent('legal_basis is required ("none" when nothing allowed it)', field="legal_basis")
    try:
        LegalBasis.parse(event.legal_basis)
    except ValueError as exc:
        raise BadAccessEvent(str(exc), field="legal_basis") from None


def _actor_json(event: AccessEvent) -> dict[str, Any]:
    actor = event.actor
    return {
        "id": actor.pk if actor is not None else None,
        "username": actor.username if actor is not None else None,
        "role": actor.role if actor is not None else None,
        "address": event.actor_address or "",
    }


def _lock_heads(patients: list[str]) -> dict[str, AuditChainHead]:
    """The patients' head rows, created if new and locked for this transaction, in address order (so two
    bulk writers over the same patients cannot deadlock). Writers of other patients never wait here."""
    heads: dict[str, AuditChainHead] = {}
    for start in range(0, len(patients), _LOCK_CHUNK):
        chunk = patients[start : start + _LOCK_CHUNK]
        locked = (
            AuditChainHead.objects.select_for_update()
            .filter(patient_address__in=chunk)
            .order_by("patient_address")
        )
        heads.update({head.patient_address: head for head in locked})
        missing = [patient for patient in chunk if patient not in heads]
        if missing:
            # ignore_conflicts: a concurrent first writer may create the same head; we then lock theirs.
            AuditChainHead.objects.bulk_create(
                [AuditChainHead(patient_address=patient, head_hash=GENESIS_HASH) for patient in missing],
                ignore_conflicts=True,
            )
            again = (
                AuditChainHead.objects.select_for_update()
                .filter(patient_address__in=missing)
                .order_by("patient_address")
            )
            heads.update({head.patient_address: head for head in again})
    for head in heads.values():
        head.head_hash = bytes(head.head_hash)
    return heads


def _skip_anchored_seqs(heads: dict[str, AuditChainHead]) -> None:
    """Never hand out a seq that already went into an anchor batch (the patients' heads are locked).

    After a database restore or a rollback, a head row can be behind a seq whose entry was anchored (the
    root on chain commits to it). Writing that seq again would give one (patient, seq) two entries, one
    of them provable on chain. We skip forward rather than refuse: refusing would stop every open of the
    patient's records (open_record logs before it decrypts) over a loss that cannot be undone, while
    skipping keeps each seq bound to one entry for good and leaves the lost seqs as a gap that
    verify_audit reports (missing_entry) from then on. The next entry chains from the last entry that
    exists, so the chain stays checkable past the gap. What is known here is the head's anchored_seq and
    the anchored leaves the database still has; a batch the restore lost entirely is known only to the
    chain: its event, kept by the indexer as an AuditLostBatch row, whose id says the batch's highest seq
    and which patients it may hold (`_lost_batch_floors`); verify_audit reports it (anchored_batch_unknown).
    """
    floors = {patient: head.anchored_seq for patient, head in heads.items()}
    _lost_batch_floors(heads, floors)
    patients = list(heads)
    for start in range(0, len(patients), _LOCK_CHUNK):
        chunk = patients[start : start + _LOCK_CHUNK]
        for patient, top in _anchored_past(
            [(patient, max(heads[patient].seq, floors[patient])) for patient in chunk]
        ):
            floors[patient] = max(floors[patient], top)
    for patient, head in heads.items():
        if head.seq < floors[patient]:
            logger.warning(
                "access log of %s: head at seq %s is behind anchored seq %s; continuing at seq %s",
                patient,
                head.seq,
                floors[patient],
                floors[patient] + 1,
            )
            head.seq = floors[patient]


def _anchored_past(bounds: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(patient, highest seq) of the anchored leaves past each (patient, seq) bound, batches that never
    reached the chain (FAILED) left out.

    Only leaves past each head: an index range scan (patient_address, seq) that is empty in the normal
    case, so every write pays one cheap query, not a scan of the patient's anchored history. Plain SQL:
    it runs on every access-log write, and building it through the ORM cost ~0.7 ms of CPU a time, five
    times its round trip.
    """
    quote = connection.ops.quote_name
    leaf, batch = AuditAnchorLeaf._meta, AuditAnchorBatch._meta
    past = " OR ".join(["(l.patient_address = %s AND l.seq > %s)"] * len(bounds))
    # Table and column names come from the models, never from input; the values are parameters.
    sql = (
        f"SELECT l.patient_address, MAX(l.seq) FROM {quote(leaf.db_table)} l "  # noqa: S608
        f"JOIN {quote(batch.db_table)} b ON b.id = l.batch_id "
        f"WHERE b.status <> %s AND ({past}) GROUP BY l.patient_address"
    )
    params: list[str | int] = [str(AuditBatchStatus.FAILED)]
    for patient, seq in bounds:
        params += [patient, seq]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(patient, int(top)) for patient, top in cursor.fetchall()]


def _lost_batch_floors(heads: dict[str, AuditChainHead], floors: dict[str, int]) -> None:
    """Raise each patient's floor to the highest seq of every lost batch that may hold the patient.

    A lost batch's leaf for a patient is at or above the patient's head at backup time; a head already at
    or past the batch's highest seq cannot collide with it, so only heads below it are looked at. The
    table is empty unless the database was restored from a copy older than some anchored batch.
    """
    lost = [summary for summary in map(decode_batch_id, _lost_batch_ids()) if summary is not None]
    if not lost:
        return
    for patient, head in heads.items():
        for summary in lost:
            if max(head.seq, floors[patient]) < summary.max_seq and summary.may_hold(patient):
                floors[patient] = summary.max_seq


def _lost_batch_ids() -> list[str]:
    """Every lost batch's id (plain SQL, as `_anchored_past`: a table that is empty but after a restore)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT batch_id FROM {connection.ops.quote_name(AuditLostBatch._meta.db_table)}")  # noqa: S608
        return [batch_id for (batch_id,) in cursor.fetchall()]


def record_access(event: AccessEvent) -> AccessLogEntry:
    """Append one entry to the patient's chain, inside the caller's transaction (or its own)."""
    return record_accesses([event])[0]


def record_accesses(events: list[AccessEvent]) -> list[AccessLogEntry]:
    """Append many entries (lists, exports); per patient in the given order, each chain locked once.

    Heads are locked in address order, so two bulk writers touching the same patients cannot deadlock.
    Returns the entries in the order of `events`.
    """
    if not events:
        return []
    # After a database restore, the anchored batches the restore lost are known only from chain events
    # the index has not read yet: until it has (AuditLostBatch rows), a write could reuse a lost seq.
    # Refuse (503 index_behind) while the index is known to trail the chain; a restore younger than that
    # check can see still leaves anchored batches the index has not read: learn those from the chain
    # first (AuditLostBatch rows, as the indexer would keep). Both are cached per process.
    indexer.require_index_current()
    anchoring.learn_unread_audit_roots()
    prepared: list[tuple[str, AccessEvent]] = []
    for event in events:
        _check(event)
        prepared.append((_address(event.patient_address, "patient_address"), event))
    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, (patient, _) in enumerate(prepared):
        by_patient[patient].append(index)
    now = timezone.now()
    at = now.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    entries: list[AccessLogEntry | None] = [None] * len(events)
    # No savepoint inside a caller's transaction (two statements fewer per open): an error here fails
    # the caller's whole transaction, and no caller catches one and goes on writing in it.
    with transaction.atomic(savepoint=False):
        heads = _lock_heads(sorted(by_patient))
        _skip_anchored_seqs(heads)
        for patient, head in heads.items():
            for index in by_patient[patient]:
                event = prepared[index][1]
                head.seq += 1
                canonical = canonical_bytes(
                    patient=patient, seq=head.seq, at=at, actor=_actor_json(event), event=event
                )
                head.head_hash = chain_hash(bytes(head.head_hash), canonical)
                entries[index] = _entry(patient, head.seq, now, event, canonical, head.head_hash)
            head.updated_at = now
        created = AccessLogEntry.objects.bulk_create(entries, batch_size=_BULK_BATCH)  # type: ignore[arg-type]
        _save_heads(list(heads.values()))
    return created


def _save_heads(heads: list[AuditChainHead]) -> None:
    """One parameterised UPDATE per head through executemany: bulk_update's CASE expressions cost
    ~1 ms per head to build, which dominated bulk appends over many patients."""
    # The table name comes from the model, never from input.
    table = AuditChainHead._meta.db_table
    sql = f"UPDATE {table} SET seq = %s, head_hash = %s, updated_at = %s WHERE id = %s"  # noqa: S608
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(h.seq, bytes(h.head_hash), adapt(h.updated_at), h.pk) for h in heads])


def _entry(
    patient: str, seq: int, now: Any, event: AccessEvent, canonical: bytes, entry_hash: bytes
) -> AccessLogEntry:
    return AccessLogEntry(
        patient_address=patient,
        seq=seq,
        actor=event.actor,
        actor_address=event.actor_address or "",
        action=str(event.action),
        purpose=str(event.purpose),
        outcome=str(event.outcome),
        legal_basis=str(event.legal_basis),
        record_id=str(event.record_id) if event.record_id else "",
        reason=event.reason,
        detail=event.detail,
        created_at=now,
        canonical=canonical,
        entry_hash=entry_hash,
    )


def entry_content(entry: AccessLogEntry) -> dict[str, Any]:
    """An entry as its hash committed to it (the canonical bytes), for display and export."""
    return json.loads(bytes(entry.canonical))
