"""The real stack for tests: one anvil per session with the contracts deployed, and personas.

Personas (healthchecks style) let every API test check the foreign-object case in one line:
alice (patient), dave (another patient), bob (alice's doctor at General Hospital), carol (a doctor
of City Clinic), hadmin (General's admin), cadmin (the consortium admin).

The chain outlives each test but the database does not, so the Directory is registered on chain
once per session (fixed anvil keys) and each test mirrors it into its own rows; patients get fresh
keys per test, so consents written by one test never show up in another.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient
from web3 import HTTPProvider

from access.identity import services as identity_services
from access.models import Doctor, Hospital, Role, User
from contracts import client
from contracts.models import Deployment, IndexerCursor
from healthhash.celery import app as celery_app
from tests.fixtures.chain import DeployedContracts, transact

pytest_plugins = ["tests.fixtures.chain", "tests.fixtures.audit_log"]

# Relayer kicks after commit go to an in-memory broker that forgets them: tests drive the relayer
# themselves, and the embedded broker's folder under var/ must not collect messages a dev worker would
# later run. The worker test (tests/contracts/test_celery_worker.py) uses the configured broker.
celery_app.conf.update(broker_url="memory://")

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _isolated_var(tmp_path_factory: pytest.TempPathFactory, settings: SettingsWrapper) -> None:
    """Each test's blobs and dev-chain state live in a temporary folder, not in var/.

    Passwords hash with MD5 here: PBKDF2 at Django's production cost would dominate the run time,
    and the hash function is not under test.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # sign-in throttle counters must not leak from one test into the next
    root = tmp_path_factory.mktemp("var")
    settings.IPFS_LOCAL_DIR = root / "ipfs"
    settings.DEV_CHAIN_STATE = root / "chain" / "state.json"


@dataclass
class Personas:
    chain: DeployedContracts
    alice: User
    dave: User
    bob: User
    bob2: User
    carol: User
    hadmin: User
    other_hadmin: User
    cadmin: User
    general: Hospital
    clinic: Hospital

    def client_for(self, user: User) -> APIClient:
        api = APIClient()
        api.force_authenticate(user)
        return api


@pytest.fixture
def chain(deployed_contracts: DeployedContracts, settings: SettingsWrapper) -> Iterator[DeployedContracts]:
    """The session chain wired into this test's settings and database (deployments, cursor at head)."""
    # The node the contracts are on: a module may override deployed_contracts with its own anvil.
    provider = deployed_contracts.w3.provider
    assert isinstance(provider, HTTPProvider)
    settings.ETH_RPC_URL = provider.endpoint_uri
    # A fresh relayer key per test: its nonces are this test's alone, whatever other tests sent.
    settings.RELAYER_PRIVATE_KEY = "0x" + secrets.token_hex(32)
    settings.CHAIN_CONFIRMATIONS = 0
    client.reset_caches()
    client.fund_relayer()
    # deploy_contracts gives the relayer ANCHOR_ROLE; this test's fresh relayer gets it the same way.
    anchors = deployed_contracts.anchors
    transact(
        anchors.functions.grantRole(anchors.functions.ANCHOR_ROLE().call(), client.relayer_account().address),
        deployed_contracts.accounts.relayer.address,
    )
    chain_id = deployed_contracts.chain_id
    for name, contract in deployed_contracts.contracts.items():
        Deployment.objects.update_or_create(
            chain_id=chain_id,
            name=name,
            defaults={"address": contract.address, "tx_hash": "", "block_number": 0},
        )
    head = deployed_contracts.w3.eth.get_block("latest")
    IndexerCursor.objects.update_or_create(
        chain_id=chain_id,
        defaults={
            "last_block": head["number"],
            "last_block_hash": "0x" + head["hash"].hex().removeprefix("0x"),
        },
    )
    yield deployed_contracts
    client.reset_caches()


def _user_with_key(username: str, role: str, private_key: bytes | None = None) -> User:
    user = identity_services.register_user(
        username=username, password=PASSWORD, role=role, with_managed_key=False
    )
    from access.identity.keys import create_managed_key

    create_managed_key(user=user, private_key=private_key)
    user.refresh_from_db()
    return user


def _hospital(slug: str, name: str, admin: User, account_key: bytes) -> Hospital:
    from access.identity.keys import create_hospital_key

    hospital = Hospital(
        slug=slug, name=name, hospital_id=identity_services.hospital_id_for(slug), admin=admin
    )
    create_hospital_key(hospital=hospital, private_key=account_key)
    admin.hospital = hospital
    admin.save(update_fields=["hospital"])
    # Registered on chain by the session fixture; the indexer would set these from the events.
    Hospital.objects.filter(pk=hospital.pk).update(active=True, registered_block=1)
    hospital.refresh_from_db()
    return hospital


def _doctor(username: str, hospital: Hospital, key: bytes) -> User:
    user = _user_with_key(username, Role.DOCTOR, key)
    Doctor.objects.create(user=user, hospital=hospital, active=True, registered_block=1)
    user.hospital = hospital
    user.save(update_fields=["hospital"])
    return user


@pytest.fixture
def personas(db: None, chain: DeployedContracts) -> Personas:
    keys = chain.accounts
    hadmin = _user_with_key("hadmin", Role.HOSPITAL_ADMIN, keys.hospital_admin.key)
    other_hadmin = _user_with_key("other-hadmin", Role.HOSPITAL_ADMIN, keys.other_hospital_admin.key)
    general = _hospital("general-hospital", "General Hospital", hadmin, keys.hospital_account.key)
    clinic = _hospital("city-clinic", "City Clinic", other_hadmin, keys.other_hospital_account.key)
    return Personas(
        chain=chain,
        alice=_user_with_key("alice", Role.PATIENT),
        dave=_user_with_key("dave", Role.PATIENT),
        bob=_doctor("bob", general, keys.doctors[0].key),
        bob2=_doctor("bob2", general, keys.doctors[1].key),
        carol=_doctor("carol", clinic, keys.other_doctor.key),
        hadmin=hadmin,
        other_hadmin=other_hadmin,
        cadmin=_user_with_key("cadmin", Role.CONSORTIUM_ADMIN, keys.consortium_admin.key),
        general=general,
        clinic=clinic,
    )


def address_of(user: User) -> str:
    """A persona's Ethereum address: every persona is created with a key, so it has one."""
    assert user.eth_address is not None, user.username
    return user.eth_address


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def pytest_report_header(config: pytest.Config) -> str:
    engine = django_settings.DATABASES["default"]["ENGINE"]
    return f"database: {engine}; broker: {django_settings.CELERY_BROKER_URL}"


_run_lock: int | None = None  # the open lock file of this run's test database, held until the process ends


def _test_database_lock_path() -> str:
    """One lock per test database: the SQLite file under HEALTHHASH_VAR_DIR, or the server's test database."""
    db = django_settings.DATABASES["default"]
    test_name = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
    identity = f"{db['ENGINE']}|{db.get('HOST', '')}|{db.get('PORT', '')}|{test_name}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"healthhash-tests-{digest}.lock")


def pytest_configure(config: pytest.Config) -> None:
    """Two runs on one test database break each other midway (SQLite "disk I/O error", PostgreSQL's test
    database dropped under the other run): the second one stops at once and says why."""
    global _run_lock
    if config.option.collectonly or _run_lock is not None:
        return
    path = _test_database_lock_path()
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        db = django_settings.DATABASES["default"]
        pytest.exit(
            f"another test run is using this test database ({db['ENGINE'].rsplit('.', 1)[-1]}, "
            f"{(db.get('TEST') or {}).get('NAME') or db['NAME']}): wait for it, or give this run its own "
            "HEALTHHASH_VAR_DIR (SQLite) or DATABASE_URL (PostgreSQL)",
            returncode=4,
        )
    _run_lock = handle
