"""The per-actor daily quota on record creation (RECORDS_PER_DAY): each record costs the relayer an
anchor, so one account may create at most so many in any 24 hours; a bundle counts every record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from access.models import User
from ehr import records
from ehr.models import Record
from ehr.record_quota import QuotaExceeded
from tests.ehr.conftest import bundle, observation
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _three_a_day(settings: SettingsWrapper) -> None:
    settings.RECORDS_PER_DAY = 3


def api_for(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def create(user: User, count: int = 1) -> None:
    for _ in range(count):
        records.create_record(actor=user, patient=user, resource=observation())


def test_the_record_over_the_daily_limit_is_a_429_that_says_when_it_frees() -> None:
    patient = PatientFactory.create()
    api = api_for(patient)
    for _ in range(3):
        assert api.post("/api/records", {"resource": observation()}, format="json").status_code == 201
    first = Record.objects.filter(created_by=patient).order_by("created_at").first()
    assert first is not None

    response = api.post("/api/records", {"resource": observation()}, format="json")

    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "quota_exceeded"
    assert "limit is 3 a day" in body["detail"]
    assert (first.created_at + timedelta(days=1)).isoformat(timespec="seconds") in body["detail"]
    assert Record.objects.count() == 3  # nothing of the 4th


def test_a_bundle_counts_each_of_its_records() -> None:
    patient = PatientFactory.create()
    create(patient, 1)
    api = api_for(patient)
    too_many = bundle(observation(), observation(), observation())
    response = api.post("/api/records/import", {"bundle": too_many}, format="json")
    assert (response.status_code, response.json()["error"]) == (429, "quota_exceeded")
    assert Record.objects.count() == 1

    fits = api.post("/api/records/import", {"bundle": bundle(observation(), observation())}, format="json")
    assert fits.status_code == 201, fits.content
    assert Record.objects.count() == 3


def test_a_bundle_larger_than_the_daily_limit_is_refused_outright() -> None:
    patient = PatientFactory.create()
    with pytest.raises(QuotaExceeded) as refused:
        records.import_bundle(actor=patient, patient=patient, bundle=bundle(*[observation()] * 4))
    assert refused.value.frees_at is None and refused.value.limit == 3


def test_the_window_slides_records_older_than_a_day_no_longer_count() -> None:
    patient = PatientFactory.create()
    create(patient, 3)
    now = timezone.now()
    ages = [timedelta(hours=25), timedelta(hours=23), timedelta(hours=1)]
    for record, age in zip(Record.objects.order_by("created_at"), ages, strict=True):
        Record.objects.filter(pk=record.pk).update(created_at=now - age)

    create(patient, 1)  # the 25-hour-old record is out of the window: 3 in it now

    with pytest.raises(QuotaExceeded) as refused:
        create(patient, 1)
    frees_at = refused.value.frees_at
    assert frees_at is not None
    # The oldest record inside the window (23 hours old) leaves it in about an hour.
    assert abs(frees_at - (now + timedelta(hours=1))) < timedelta(seconds=5)


def test_the_quota_is_per_actor_and_zero_turns_it_off(settings: SettingsWrapper) -> None:
    patient, other = PatientFactory.create(), PatientFactory.create()
    create(patient, 3)
    create(other, 3)  # the other patient's quota is their own
    with pytest.raises(QuotaExceeded):
        create(patient, 1)
    settings.RECORDS_PER_DAY = 0
    create(patient, 2)
    assert Record.objects.filter(created_by=patient).count() == 5
