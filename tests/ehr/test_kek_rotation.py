"""`rotate_kek` rewraps every data key under the new active KEK without touching content; records keep
opening throughout; a record whose KEK is gone fails loudly."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ehr import keys, records
from ehr.models import Record
from healthhash.sealing import new_kek_entry
from tests.ehr.conftest import observation

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
    assert "3 rewrapped" in out.getvalue()

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
    assert (report.rewrapped, report.already_current) == (0, 1)


def test_rotation_without_the_old_kek_reports_every_unreadable_key(personas: Any, settings: Any) -> None:
    record = records.create_record(actor=personas.alice, patient=personas.alice, resource=observation())
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-3")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("rotate_kek", stdout=StringIO(), stderr=err)
    assert str(record.id) in err.getvalue() and "kek-test" in err.getvalue()
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
