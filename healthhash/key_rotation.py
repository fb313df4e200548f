"""Every database column sealed under the KEK ring, registered by the app that owns it, and the one
rotation over all of them (`manage.py rotate_kek`).

An app that stores `healthhash.sealing` output (a wrapped data key or a `seal_secret`) registers the
column in its `AppConfig.ready()` with `register_sealed_column`, naming the row values its seal context
is built from. Rotation then rewraps every registered column under the active key id and counts, from
the sealed bytes themselves (the key id is in their header), how many rows remain under each other key
id: retiring a key id is safe only when that count is zero everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from healthhash import sealing

__all__ = [
    "ColumnReport",
    "RotationReport",
    "SealedColumn",
    "census",
    "register_sealed_column",
    "rotate",
    "sealed_columns",
]


@dataclass(frozen=True)
class SealedColumn:
    """One column of sealed bytes: `context(row)` rebuilds the context its seal is bound to.

    `row` maps each name in `context_fields` (and "pk") to the row's value. `key_id_field`, if set,
    is a column that mirrors the key id for queries; rotation keeps it in step with the seal.
    """

    label: str
    model: type[models.Model]
    field: str
    context_fields: tuple[str, ...]
    context: Callable[[Mapping[str, Any]], bytes]
    key_id_field: str | None = None


_COLUMNS: dict[str, SealedColumn] = {}


def register_sealed_column(column: SealedColumn) -> None:
    """Add a column to rotation (idempotent by label, so a second ready() call is harmless)."""
    _COLUMNS[column.label] = column


def sealed_columns() -> tuple[SealedColumn, ...]:
    return tuple(_COLUMNS.values())


@dataclass
class ColumnReport:
    label: str
    rewrapped: int = 0
    already_current: int = 0
    # Row pk -> reason; reasons name key ids, never key bytes.
    failed: dict[str, str] = field(default_factory=dict)
    # Key id -> rows still sealed under it, counted after the pass (the active id is left out).
    remaining: Counter[str] = field(default_factory=Counter)


@dataclass
class RotationReport:
    active_kid: str
    columns: list[ColumnReport] = field(default_factory=list)

    @property
    def rewrapped(self) -> int:
        return sum(c.rewrapped for c in self.columns)

    @property
    def already_current(self) -> int:
        return sum(c.already_current for c in self.columns)

    @property
    def failed(self) -> dict[str, str]:
        return {f"{c.label} {pk}": reason for c in self.columns for pk, reason in c.failed.items()}

    @property
    def remaining(self) -> Counter[str]:
        """Rows under each old key id across all columns; empty when the old ids may be retired."""
        total: Counter[str] = Counter()
        for column in self.columns:
            total.update(column.remaining)
        return total

    @property
    def done(self) -> bool:
        return not self.remaining and not self.failed


def census() -> dict[str, Counter[str]]:
    """Per column label, how many rows are sealed under each key id (read from the sealed bytes)."""
    return {column.label: _count_key_ids(column) for column in sealed_columns()}


def rotate(
    *, ring: sealing.KeyRing, batch_size: int = 500, say: Callable[[str], None] = lambda _: None
) -> RotationReport:
    """Rewrap every registered column under `ring.active_kid`, then count what remains elsewhere.

    Runs in small transactions while the app serves requests: a row is updated only if its sealed
    bytes are still the ones read (a conditional update), and readers holding the old bytes still
    open them while the old key stays in the ring. Rows whose key is missing or that fail
    authentication are reported, not skipped silently; rows written under an old key by a process
    that still has the old ring show up in `remaining`.
    """
    report = RotationReport(active_kid=ring.active_kid)
    columns = sealed_columns()
    for column in columns:
        report.columns.append(_rotate_column(column, ring=ring, batch_size=batch_size, say=say))
    # Counted after every pass, so a row sealed under an old key meanwhile is not missed.
    for column, column_report in zip(columns, report.columns, strict=True):
        counts = _count_key_ids(column)
        column_report.remaining = Counter({k: n for k, n in counts.items() if k != ring.active_kid})
    return report


def _rotate_column(
    column: SealedColumn, *, ring: sealing.KeyRing, batch_size: int, say: Callable[[str], None]
) -> ColumnReport:
    report = ColumnReport(label=column.label)
    for batch in _batches(column, batch_size=batch_size):
        with transaction.atomic():
            for row in batch:
                _rotate_row(column, row, ring=ring, report=report)
        say(f"{column.label}: {report.rewrapped} rewrapped so far")
    return report


def _rotate_row(
    column: SealedColumn, row: Mapping[str, Any], *, ring: sealing.KeyRing, report: ColumnReport
) -> None:
    sealed = bytes(row[column.field])
    try:
        if sealing.wrapped_key_id(sealed) == ring.active_kid:
            report.already_current += 1
            return
        rewrapped = sealing.rewrap(ring, sealed, context=column.context(row))
    except sealing.SealingError as exc:
        report.failed[str(row["pk"])] = str(exc)
        return
    changes: dict[str, Any] = {column.field: rewrapped}
    if column.key_id_field:
        changes[column.key_id_field] = ring.active_kid
    # Conditional update: a row changed since it was read is left for the census to count.
    report.rewrapped += column.model._default_manager.filter(pk=row["pk"], **{column.field: sealed}).update(
        **changes
    )


def _batches(column: SealedColumn, *, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    names = ("pk", column.field, *column.context_fields)
    rows = column.model._default_manager.order_by("pk")
    last_pk = None
    while True:
        page = rows if last_pk is None else rows.filter(pk__gt=last_pk)
        batch = list(page.values(*names)[:batch_size])
        if not batch:
            return
        last_pk = batch[-1]["pk"]
        yield batch


def _count_key_ids(column: SealedColumn) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sealed in column.model._default_manager.values_list(column.field, flat=True).iterator():
        try:
            counts[sealing.wrapped_key_id(bytes(sealed))] += 1
        except sealing.SealBroken:
            counts["(unreadable)"] += 1
    return counts
