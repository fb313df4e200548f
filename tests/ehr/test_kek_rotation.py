"""`rotate_kek` rewraps every KEK-sealed secret (record data keys, users' and hospitals' managed keys)
under the new active KEK without touching content; records keep opening throughout; it says how many
rows remain under each old key id and is not done while any do; a record whose KEK is gone fails loudly."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from access.consent import services as consent_services
from access.identity.keys import create_managed_key, unlock_hospital_key
from access.models import ManagedKey
from contracts.drain import drain_outbox
from ehr import keys, records
from ehr.models import Record
from healthhash import key_rotation
from healthhash.sealing import new_kek_entry, wrapped_key_id
from tests.conftest import PASSWORD
from tests.ehr.conftest import observation
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_rotation_rewraps_keys_and_leaves_content_alone(personas: Any, settings: Any) -> None:
    old_entry = settings.KEY_ENCRYPTION_KEYS
    made = [
        records.create_record(actor=personas.alice, patient=personas.alice, resource=observation(value=v))
        for v in (1.0, 2.0, 3.0)
    ]
    before = {r.pk: (r.cid, r.digest, bytes(r.wrapped_key)) for r in Record.objects.all()}

    settings.KEY_ENCRYPTION_KEYS = f"{new_kek_entry('kek-2')},{old_entry}"
    out = StringIO()
    call_command("rotate_kek", stdout=out, stderr=StringIO())
    assert "record data keys: 3 rewrapped" in out.getvalue()
    assert "done:" in out.getvalue()

    for record in Record.objects.all():
        cid, digest, wrapped = before[record.pk]
        assert (record.cid, record.digest, record.key_id) == (cid, digest, "kek-2")
        assert bytes(record.wrapped_key) != wrapped

    settings.KEY_ENCRYPTION_KEYS = settings.KEY_ENCRYPTION_KEYS.split(",")[0]  # the old KEK retired
    values = sorted(
        records.open_record(record_id=r.id, actor=personas.alice).resource["valueQuantity"]["value"]
        for r in made
    )
    assert values == [1.0, 2.0, 3.0]


def test_rotation_again_is_a_no_op(personas: Any) -> None:
    records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    report = keys.rotate_kek()
    managed_keys = ManagedKey.objects.count()
    assert managed_keys >= 9  # every persona and both hospitals
    assert (report.rewrapped, report.already_current) == (0, 1 + managed_keys)
    assert report.done and not report.remaining


def test_rotation_without_the_old_kek_reports_every_unreadable_key(personas: Any, settings: Any) -> None:
    record = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-3")
    err = StringIO()
    with pytest.raises(CommandError, match="NOT done") as refused:
        call_command("rotate_kek", stdout=StringIO(), stderr=err)
    assert str(record.id) in err.getvalue() and "kek-test" in err.getvalue()
    # the refusal counts what stays behind: the record and every persona's managed key
    assert f"kek-test: {1 + ManagedKey.objects.count()}" in str(refused.value)
    assert Record.objects.get(pk=record.pk).key_id == "kek-test"


def test_wrapped_key_copied_onto_another_record_does_not_open(personas: Any) -> None:
    first = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    second = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    Record.objects.filter(pk=second.pk).update(wrapped_key=bytes(first.wrapped_key))
    with pytest.raises(records.Tampered):
        records.open_record(record_id=second.id, actor=personas.alice)


def test_new_key_id_prints_an_entry_for_the_ring(db: None) -> None:
    out = StringIO()
    call_command("rotate_kek", new_key_id="k9", stdout=out)
    assert out.getvalue().startswith("k9:")


def test_rotation_then_retiring_the_old_kek_keeps_managed_keys_signing_and_records_opening(
    personas: Any, settings: Any
) -> None:
    """The operator's path from issue 13: add a key, rotate, retire the old one, then use everything."""
    p = personas
    record = records.create_record(actor=p.alice, patient=p.alice, resource=observation(value=7.5))
    old_entry = settings.KEY_ENCRYPTION_KEYS
    new_entry = new_kek_entry("kek-2")
    settings.KEY_ENCRYPTION_KEYS = f"{new_entry},{old_entry}"

    out = StringIO()
    call_command("rotate_kek", stdout=out, stderr=StringIO())
    assert f"managed Ethereum keys: {ManagedKey.objects.count()} rewrapped" in out.getvalue()
    assert {
        wrapped_key_id(bytes(b)) for b in ManagedKey.objects.values_list("sealed_private_key", flat=True)
    } == {"kek-2"}

    settings.KEY_ENCRYPTION_KEYS = new_entry  # the old KEK retired
    consent = consent_services.grant_with_managed_key(
        patient=p.alice,
        password=PASSWORD,
        grantee=p.bob.eth_address,
        scope="chart",
        purpose="TREATMENT",
        expires_at=None,
    )
    drain_outbox()
    consent.refresh_from_db()
    assert consent.status == "active", consent.failure_reason
    opened = records.open_record(record_id=record.id, actor=p.bob)
    assert opened.resource["valueQuantity"]["value"] == 7.5
    hospital_account = unlock_hospital_key(hospital=p.general, user=p.hadmin, password=PASSWORD)
    assert hospital_account.address == p.general.account_address


def test_a_managed_key_written_under_the_old_kek_after_the_pass_is_counted_and_refused(
    personas: Any, settings: Any
) -> None:
    """A process still running with the old ring seals a new key after the managed keys' pass."""
    records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    old_entry = settings.KEY_ENCRYPTION_KEYS
    rotated_ring = f"{new_kek_entry('kek-2')},{old_entry}"
    settings.KEY_ENCRYPTION_KEYS = rotated_ring
    late = UserFactory.create(eth_address=None, key_kind="")

    def seal_one_late(line: str) -> None:
        if line.startswith("record data keys") and not ManagedKey.objects.filter(user=late).exists():
            settings.KEY_ENCRYPTION_KEYS = old_entry
            create_managed_key(user=late)
            settings.KEY_ENCRYPTION_KEYS = rotated_ring

    report = keys.rotate_kek(say=seal_one_late)
    assert not report.done
    assert report.remaining == {"kek-test": 1}
    assert report.rewrapped == 1 + ManagedKey.objects.count() - 1  # the record and all but the late key


def test_every_sealed_binary_column_is_registered_for_rotation(db: None) -> None:
    """A new column holding sealed bytes must be registered, or rotation would strand it."""
    from django.apps import apps
    from django.db import models

    registered = {(c.model, c.field) for c in key_rotation.sealed_columns()}
    sealed_looking = {
        (model, f.name)
        for model in apps.get_models()
        for f in model._meta.get_fields()
        if isinstance(f, models.BinaryField) and any(w in f.name for w in ("wrapped", "sealed", "secret"))
    }
    assert sealed_looking and sealed_looking <= registered
    assert {c.label for c in key_rotation.sealed_columns()} >= {"record data keys", "managed Ethereum keys"}


def test_status_counts_rows_under_each_key_id(personas: Any, settings: Any) -> None:
    records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    out = StringIO()
    call_command("rotate_kek", status=True, stdout=out)
    assert "record data keys: kek-test (active): 1" in out.getvalue()
    assert f"managed Ethereum keys: kek-test (active): {ManagedKey.objects.count()}" in out.getvalue()
