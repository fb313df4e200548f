"""The demo charts: scikit-learn's bundled Breast Cancer Wisconsin rows become valid FHIR records (30
Observations and a Condition per row), spread over hospitals with skewed label mixes."""

from __future__ import annotations

from typing import Any

import pytest

from demo import charts as demo_charts
from ehr import records
from ehr.models import Record

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_per_hospital_have_skewed_label_mixes() -> None:
    _data, target, _names = demo_charts._table()
    pools = demo_charts._rows_by_hospital(target, 3, [100, 100, 100], seed=1)
    malignant = [sum(int(target[i]) == 0 for i in rows) for rows in pools]
    assert malignant == [70, 40, 15]
    assert len({i for rows in pools for i in rows}) == 300  # no row twice


def test_import_writes_observations_and_a_condition_per_patient(personas: Any) -> None:
    patients = [personas.alice, personas.dave]
    report = demo_charts.import_demo_charts(patients=patients, hospitals=[personas.general, personas.clinic])
    assert report.records == 62 and report.hospital_of == {"alice": "general-hospital", "dave": "city-clinic"}
    alice = Record.objects.filter(patient=personas.alice)
    assert alice.filter(resource_type="Observation", category="laboratory").count() == 30
    condition = alice.get(resource_type="Condition")
    opened = records.open_record(record_id=condition.id, actor=personas.alice).resource
    assert opened["code"]["coding"][0]["code"] == report.label_of["alice"]
    again = demo_charts.import_demo_charts(patients=patients, hospitals=[personas.general, personas.clinic])
    assert again.skipped == ["alice", "dave"] and Record.objects.count() == 62
