"""What a consent covers: the whole chart, one category of records, or one record.

A scope travels as a string in the signed EIP-712 message (wallets show it to the patient as text);
the chain only ever sees its keccak256. Record scopes are checked by a validator that the records
app registers (access must not import ehr), so a patient cannot sign a consent for a record that
is not hers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from eth_utils import keccak

from healthhash.errors import DomainError

CATEGORIES: tuple[str, ...] = (
    "laboratory",
    "vital-signs",
    "condition",
    "medication",
    "imaging",
    "clinical-note",
    "document",
)
CHART = "chart"

# (patient_address, record_id) -> True when the record exists and belongs to that patient.
RecordOwnerCheck = Callable[[str, uuid.UUID], bool]
_record_owner_checks: list[RecordOwnerCheck] = []


class BadScope(DomainError):
    code = "bad_scope"


@dataclass(frozen=True)
class Scope:
    kind: str  # "chart" | "category" | "record"
    value: str  # "" for chart, the category name, or the record uuid

    def __str__(self) -> str:
        return CHART if self.kind == CHART else f"{self.kind}:{self.value}"

    @property
    def hash_hex(self) -> str:
        return scope_hash_hex(str(self))


def register_record_owner_check(check: RecordOwnerCheck) -> None:
    """Called by the records app in its AppConfig.ready()."""
    if check not in _record_owner_checks:
        _record_owner_checks.append(check)


@lru_cache(maxsize=65536)
def scope_hash_hex(scope: str) -> str:
    return "0x" + keccak(text=scope).hex()


def parse_scope(text: object, *, field: str = "scope") -> Scope:
    if not isinstance(text, str) or not text:
        raise BadScope('scope must be "chart", "category:<name>" or "record:<uuid>"', field=field)
    if text == CHART:
        return Scope(CHART, "")
    kind, _, value = text.partition(":")
    if kind == "category":
        if value not in CATEGORIES:
            raise BadScope(
                f"unknown category {value!r}; expected one of {', '.join(CATEGORIES)}", field=field
            )
        return Scope("category", value)
    if kind == "record":
        try:
            record_id = uuid.UUID(value)
        except ValueError:
            raise BadScope(f"record scope needs a record id (uuid), got {value!r}", field=field) from None
        return Scope("record", str(record_id))
    raise BadScope('scope must be "chart", "category:<name>" or "record:<uuid>"', field=field)


def check_scope_belongs_to(scope: Scope, *, patient_address: str, field: str = "scope") -> None:
    """A record scope must name one of the patient's own records."""
    if scope.kind != "record":
        return
    record_id = uuid.UUID(scope.value)
    if not _record_owner_checks or not any(
        check(patient_address, record_id) for check in _record_owner_checks
    ):
        raise BadScope(f"record {scope.value} is not one of your records", field=field, code="unknown_record")


def resolve_scope_hash(scope_hash: str) -> str:
    """Best effort: the scope text for a hash seen on chain (chart and categories are known)."""
    for text in (CHART, *(f"category:{name}" for name in CATEGORIES)):
        if scope_hash_hex(text) == scope_hash:
            return text
    return ""
