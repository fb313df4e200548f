"""The access log is append-only in the database itself: UPDATE and DELETE of an entry are refused by
triggers (access/migrations/0004_access_log_append_only.py), whoever sends them; the migration is reversible
and verify_audit reports the triggers missing.

Transactional on purpose: the test runner empties the tables after each test (tests/fixtures/audit_log.py
explains how that coexists with the triggers on SQLite), and the next test must start clean.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import IntegrityError, connection, transaction

from access.audit.log import AccessEvent, record_accesses
from access.audit.verify import verify_audit
from access.models import AccessAction, AccessLogEntry, AccessOutcome, AccessPurpose, LegalBasis
from tests.conftest import address_of
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

append_only = importlib.import_module("access.migrations.0004_access_log_append_only")


def _write(n: int = 3) -> str:
    patient = PatientFactory.create()
    record_accesses(
        [
            AccessEvent(
                patient_address=address_of(patient),
                actor=None,
                actor_address="",
                action=AccessAction.LIST,
                purpose=AccessPurpose.OWNER,
                outcome=AccessOutcome.ALLOWED,
                legal_basis=LegalBasis.owner(),
            )
            for _ in range(n)
        ]
    )
    return address_of(patient)


def _refused(sql: str, params: list[str]) -> str:
    with pytest.raises(IntegrityError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(refused.value)


def test_the_orm_cannot_update_or_delete_an_entry() -> None:
    patient = _write()
    entries = AccessLogEntry.objects.filter(patient_address=patient)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entries.filter(seq=3).update(action="deny", outcome="denied")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entries.filter(seq__gt=1).delete()
    assert sorted(entries.values_list("seq", "action")) == [(1, "list"), (2, "list"), (3, "list")]


def test_raw_sql_cannot_update_or_delete_an_entry() -> None:
    patient = _write()
    table = AccessLogEntry._meta.db_table
    assert "UPDATE refused" in _refused(
        f"UPDATE {table} SET outcome = 'denied' WHERE patient_address = %s",
        [patient],
    )
    assert "DELETE refused" in _refused(f"DELETE FROM {table} WHERE patient_address = %s", [patient])
    assert AccessLogEntry.objects.filter(patient_address=patient).count() == 3


def test_appending_still_works_and_verifies() -> None:
    patient = _write(2)
    _write(1)
    record_accesses(
        [
            AccessEvent(
                patient_address=patient,
                actor=None,
                actor_address="",
                action=AccessAction.EXPORT,
                purpose=AccessPurpose.OWNER,
                outcome=AccessOutcome.ALLOWED,
                legal_basis=LegalBasis.owner(),
            )
        ]
    )
    report = verify_audit()
    assert report.ok, report.breaks
    assert (report.chains, report.entries) == (2, 4)


def test_the_migration_is_reversible_and_verify_reports_missing_triggers() -> None:
    patient = _write()
    with connection.schema_editor() as editor:
        append_only.remove(None, editor)
    try:
        assert [b.kind for b in verify_audit().breaks if b.patient is None] == ["append_only_off"]
        AccessLogEntry.objects.filter(patient_address=patient, seq=3).delete()  # nothing refuses it now
    finally:
        with connection.schema_editor() as editor:
            append_only.install(None, editor)
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessLogEntry.objects.filter(patient_address=patient).delete()
    assert "append_only_off" not in {b.kind for b in verify_audit().breaks}
