"""Fixtures for the access tests: a fast password hasher, a test key ring, a CSRF-checked client.

The chain-free identity tests build their rows with tests/factories.py (no anvil needed); the
chain-backed personas come from tests/conftest.py.
"""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from access.models import Hospital, User
from healthhash.sealing import new_kek_entry
from tests.factories import DoctorFactory, HospitalFactory, PatientFactory

TEST_KEK = new_kek_entry("test-kek")


@pytest.fixture(autouse=True)
def _fast_and_isolated_secrets(settings: SettingsWrapper) -> None:
    # PBKDF2 at Django's default cost would dominate the run time; the hash function is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.KEY_ENCRYPTION_KEYS = TEST_KEK


@pytest.fixture
def csrf_api() -> APIClient:
    """A client that, like a browser, is held to the CSRF check."""
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def patient(db: None) -> User:
    return PatientFactory.create()


@pytest.fixture
def other_patient(db: None) -> User:
    return PatientFactory.create()


@pytest.fixture
def hospital(db: None) -> Hospital:
    return HospitalFactory.create()


@pytest.fixture
def doctor(hospital: Hospital) -> User:
    return DoctorFactory.create(hospital=hospital).user
