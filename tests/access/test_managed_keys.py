"""Managed keys: sealed at rest, opened only with the owner's password (throttled per user, locked after
repeated wrong passwords), never written to logs."""

from __future__ import annotations

import logging
import time

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from pytest_django.fixtures import Settings as SettingsWrapper

from access.identity import password_guard
from access.identity import services as identity_services
from access.identity.keys import (
    BadPassword,
    KeyLocked,
    ManagedKeyBroken,
    PasswordConfirmThrottled,
    create_managed_key,
    unlock_hospital_key,
    unlock_managed_key,
)
from access.identity.users import address_of
from access.models import KeyKind, ManagedKey, Role, User
from healthhash.errors import Forbidden
from tests.factories import PASSWORD, HospitalAdminFactory, UserFactory

pytestmark = pytest.mark.django_db


def keyless_user() -> User:
    return UserFactory.create(eth_address=None, key_kind="")


def test_new_managed_key_gives_the_user_its_address() -> None:
    user = keyless_user()
    managed = create_managed_key(user=user)
    user.refresh_from_db()
    assert user.eth_address == managed.address
    assert user.key_kind == KeyKind.MANAGED
    assert Account.from_key(b"\x01" * 32).address != managed.address  # sanity: a real, fresh key


def test_stored_blob_holds_no_private_key_bytes_in_clear() -> None:
    user = keyless_user()
    managed = create_managed_key(user=user)
    private_key = unlock_managed_key(user=user, password=PASSWORD).key
    stored = bytes(ManagedKey.objects.get(pk=managed.pk).sealed_private_key)
    assert private_key not in stored
    assert private_key.hex().encode() not in stored  # nor as hex text
    assert private_key.hex().upper().encode() not in stored


def test_unlocked_key_signs_as_the_users_address() -> None:
    user = keyless_user()
    create_managed_key(user=user)
    account = unlock_managed_key(user=user, password=PASSWORD)
    signed = account.sign_message(encode_defunct(text="consent"))
    assert (
        Account.recover_message(encode_defunct(text="consent"), signature=signed.signature)
        == user.eth_address
    )


def test_wrong_password_is_refused_with_bad_password() -> None:
    user = keyless_user()
    create_managed_key(user=user)
    with pytest.raises(BadPassword) as caught:
        unlock_managed_key(user=user, password="not the password")
    assert caught.value.code == "bad_password"
    assert caught.value.status_code == 403
    assert caught.value.field == "password"


def test_sealed_key_copied_onto_another_user_does_not_open() -> None:
    alice, mallory = keyless_user(), keyless_user()
    create_managed_key(user=alice)
    create_managed_key(user=mallory)
    alice_blob = ManagedKey.objects.get(user=alice).sealed_private_key
    ManagedKey.objects.filter(user=mallory).update(sealed_private_key=alice_blob)
    with pytest.raises(ManagedKeyBroken):
        unlock_managed_key(user=mallory, password=PASSWORD)


def test_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = keyless_user()
    create_managed_key(user=user)
    account = unlock_managed_key(user=user, password=PASSWORD)
    with pytest.raises(BadPassword):
        unlock_managed_key(user=user, password="wrong")
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert address_of(user) in caplog.text  # the creation was logged, by address
    assert account.key.hex() not in logged.lower()
    assert account.key.hex() not in repr(ManagedKey.objects.get(user=user))
    assert account.key.hex() not in repr(account)


def test_register_user_creates_a_managed_key_by_default() -> None:
    user = identity_services.register_user(username="erin", password=PASSWORD, role=Role.PATIENT)
    assert user.key_kind == KeyKind.MANAGED
    assert unlock_managed_key(user=user, password=PASSWORD).address == user.eth_address


def test_hospital_account_key_opens_for_its_admin_only() -> None:
    admin, stranger = HospitalAdminFactory.create(), HospitalAdminFactory.create()
    hospital = identity_services.create_hospital(slug="st-mary", name="St Mary", admin=admin)
    assert hospital.hospital_id == identity_services.hospital_id_for("st-mary")
    assert not hospital.active  # active only once the Directory event is indexed
    account = unlock_hospital_key(hospital=hospital, user=admin, password=PASSWORD)
    assert account.address == hospital.account_address != admin.eth_address
    with pytest.raises(Forbidden):
        unlock_hospital_key(hospital=hospital, user=stranger, password=PASSWORD)
    with pytest.raises(BadPassword):
        unlock_hospital_key(hospital=hospital, user=admin, password="wrong")


# --- password re-confirmation: throttled per user, locked after repeated wrong passwords ------


def test_repeated_wrong_passwords_lock_the_key_even_against_the_right_one(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 5
    user = keyless_user()
    create_managed_key(user=user)
    for _ in range(4):
        with pytest.raises(BadPassword):
            unlock_managed_key(user=user, password="guess")
    with pytest.raises(KeyLocked) as locked_now:
        unlock_managed_key(user=user, password="guess")
    with pytest.raises(KeyLocked) as still_locked:
        unlock_managed_key(user=user, password=PASSWORD)
    for caught in (locked_now.value, still_locked.value):
        assert (caught.status_code, caught.code, caught.field) == (423, "key_locked", "password")
        assert "15 minutes" in caught.detail and "Signing in again" in caught.detail
    assert locked_now.value.detail.startswith("Wrong password.")


def test_the_lock_lifts_by_itself_when_its_time_is_up(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 2
    settings.PASSWORD_CONFIRM_LOCKOUT_S = 1
    user = keyless_user()
    create_managed_key(user=user)
    with pytest.raises(BadPassword):
        unlock_managed_key(user=user, password="guess")
    with pytest.raises(KeyLocked):
        unlock_managed_key(user=user, password="guess")
    time.sleep(1.1)
    assert unlock_managed_key(user=user, password=PASSWORD).address == user.eth_address


def test_a_right_password_resets_the_count_of_wrong_ones(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 3
    user = keyless_user()
    create_managed_key(user=user)
    for _ in range(3):
        for _ in range(2):
            with pytest.raises(BadPassword):
                unlock_managed_key(user=user, password="typo")
        unlock_managed_key(user=user, password=PASSWORD)


def test_the_lock_is_per_user_and_covers_the_hospital_key_its_admin_unlocks(
    settings: SettingsWrapper,
) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 2
    admin, bystander = HospitalAdminFactory.create(), keyless_user()
    create_managed_key(user=bystander)
    hospital = identity_services.create_hospital(slug="st-luke", name="St Luke", admin=admin)
    with pytest.raises(BadPassword):
        unlock_hospital_key(hospital=hospital, user=admin, password="guess")
    with pytest.raises(KeyLocked):
        unlock_hospital_key(hospital=hospital, user=admin, password="guess")
    with pytest.raises(KeyLocked):
        unlock_hospital_key(hospital=hospital, user=admin, password=PASSWORD)
    assert unlock_managed_key(user=bystander, password=PASSWORD).address == bystander.eth_address


def test_confirmations_are_throttled_per_user_right_or_wrong(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_RATE = "3/minute"
    user, other = keyless_user(), keyless_user()
    create_managed_key(user=user)
    create_managed_key(user=other)
    for _ in range(3):
        unlock_managed_key(user=user, password=PASSWORD)
    with pytest.raises(PasswordConfirmThrottled) as caught:
        unlock_managed_key(user=user, password=PASSWORD)
    assert (caught.value.status_code, caught.value.code) == (429, "throttled")
    assert 0 < caught.value.retry_after_s <= 60
    unlock_managed_key(user=other, password=PASSWORD)  # another user's budget is untouched


def test_clear_lock_unlocks_at_once(settings: SettingsWrapper) -> None:
    settings.PASSWORD_CONFIRM_MAX_FAILURES = 1
    user = keyless_user()
    create_managed_key(user=user)
    with pytest.raises(KeyLocked):
        unlock_managed_key(user=user, password="guess")
    password_guard.clear_lock(user=user)
    assert unlock_managed_key(user=user, password=PASSWORD).address == user.eth_address
