"""The access log is append-only in the database itself: triggers refuse UPDATE and DELETE of entries.

The application never updates or deletes an entry (access/audit/log.py only inserts); these triggers make
the database refuse it too, so a rollback of a patient's chain (deleting the unanchored tail and winding
the head back) cannot be done through the application's connection or any other that does not first drop
the triggers. Both vendors raise an integrity error (SQLite RAISE(ABORT), SQLSTATE 23001 on PostgreSQL).

Not covered, on purpose: PostgreSQL TRUNCATE (a statement-level operation that needs the table owner's
or the TRUNCATE privilege; the test runner's flush uses it) and anyone who can drop a trigger. Run the
application under a role that owns no table and has no TRUNCATE privilege on access_accesslogentry.

Caution for later migrations: on SQLite, a migration that rebuilds access_accesslogentry (most ALTERs do)
drops its triggers with the old table; re-run `install` after it (tests/access/test_access_log_append_only.py
fails when the triggers are gone).
"""

from __future__ import annotations

from django.db import migrations

TABLE = "access_accesslogentry"
MESSAGE = "access log entries are append-only"

SQLITE_INSTALL = [
    f"CREATE TRIGGER access_log_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END;",
    f"CREATE TRIGGER access_log_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END;",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS access_log_no_update;",
    "DROP TRIGGER IF EXISTS access_log_no_delete;",
]

POSTGRESQL_INSTALL = [
    "CREATE OR REPLACE FUNCTION access_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = 'restrict_violation'; END; $$;",
    f"CREATE TRIGGER access_log_no_update_or_delete BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION access_log_refuse_change();",
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS access_log_no_update_or_delete ON {TABLE};",
    "DROP FUNCTION IF EXISTS access_log_refuse_change();",
]

_BY_VENDOR = {
    "sqlite": (SQLITE_INSTALL, SQLITE_REMOVE),
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_REMOVE),
}


def statements(vendor: str, *, install: bool) -> list[str]:
    """The vendor's statements that install (or remove) the triggers; [] for a vendor without them."""
    install_sql, remove_sql = _BY_VENDOR.get(vendor, ([], []))
    return install_sql if install else remove_sql


def _run(schema_editor, *, install: bool) -> None:
    for sql in statements(schema_editor.connection.vendor, install=install):
        schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    _run(schema_editor, install=True)


def remove(apps, schema_editor):
    _run(schema_editor, install=False)


class Migration(migrations.Migration):
    dependencies = [("access", "0003_apitoken_expires_at")]

    operations = [migrations.RunPython(install, remove)]
