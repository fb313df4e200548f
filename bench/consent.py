"""The consent benchmark behind `manage.py bench_consent`: gas, relayed grants/s, check vs eth_call latency.

Runs on a throwaway anvil and a throwaway database (Django's test-database machinery), so it never
touches the demo's chain or rows. Every ratio is against a baseline measured in the same run.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import override_settings
from eth_account import Account
from web3 import Web3

from access.consent import selectors as consent_selectors
from access.consent import services as consent_services
from access.consent.scopes import CATEGORIES, scope_hash_hex
from access.identity import services as identity_services
from access.identity.keys import create_hospital_key, create_managed_key
from access.models import Consent, ConsentStatus, Doctor, Hospital, Role, User
from bench.chain import benchmark_indexer, measure_chain_limit
from bench.gas_report import measure_gas
from contracts import client, indexer, relayer
from contracts.deploy import deploy_contracts
from contracts.messages import Domain, Grant
from contracts.models import OutboxItem
from contracts.node import anvil_private_keys, start_anvil
from healthhash.celery import app as celery_app
from healthhash.database_url import current_database_url

Say = Callable[[str], None]
N_DOCTORS = 2
BENCH_PASSWORD = secrets.token_urlsafe(16)  # throwaway users in a throwaway database
UNUSABLE_PASSWORD = "!"  # Django's marker for "no password" (wallet users)  # noqa: S105


@contextmanager
def throwaway_database() -> Iterator[None]:
    """A fresh database of the configured engine (a temp SQLite file, or test_<name> on PostgreSQL)."""
    db = settings.DATABASES["default"]
    folder = tempfile.mkdtemp(prefix="hh-bench-")
    if connection.vendor == "sqlite":
        db.setdefault("TEST", {})["NAME"] = str(Path(folder) / "bench.sqlite3")
    else:  # not test_<name>: a test run may be using that one right now
        db.setdefault("TEST", {})["NAME"] = f"bench_{db['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


@contextmanager
def throwaway_chain() -> Iterator[Any]:
    node = start_anvil()
    broker = celery_app.conf.broker_url
    # The benchmark drives the relayer itself; kicks must not pile up in the real broker.
    # Item assignment is what `conf.broker_url = ...` does at runtime; the stub's property is read-only.
    celery_app.conf["broker_url"] = "memory://"
    try:
        with override_settings(
            ETH_RPC_URL=node.rpc_url,
            CHAIN_CONFIRMATIONS=0,
            RELAYER_PRIVATE_KEY="0x" + secrets.token_hex(32),
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ):
            client.reset_caches()
            client.fund_relayer()
            yield node
    finally:
        celery_app.conf["broker_url"] = broker
        client.reset_caches()
        node.stop()


def _setup_directory() -> list[str]:
    """One hospital and its doctors, registered on chain by anvil's unlocked admin accounts, then indexed."""
    keys = [Account.from_key(k) for k in anvil_private_keys(3 + N_DOCTORS)]
    consortium, admin_key, account_key, doctor_keys = keys[0], keys[1], keys[2], keys[3:]
    deploy_contracts(consortium_admin=consortium.address, say=lambda _: None)
    admin = identity_services.register_user(
        username="bench-admin", password=BENCH_PASSWORD, role=Role.HOSPITAL_ADMIN, with_managed_key=False
    )
    create_managed_key(user=admin, private_key=admin_key.key)
    hospital = Hospital(
        slug="bench", name="Bench", hospital_id=identity_services.hospital_id_for("bench"), admin=admin
    )
    create_hospital_key(hospital=hospital, private_key=account_key.key)
    directory = client.contract("Directory")
    w3 = client.get_web3()
    zero = "0x" + "00" * 20
    hid = bytes.fromhex(hospital.hospital_id[2:])
    tx = directory.functions.execute((0, hid, account_key.address, admin_key.address, 0, 0))
    w3.eth.wait_for_transaction_receipt(tx.transact({"from": consortium.address}))
    for key in doctor_keys:
        user = identity_services.register_user(
            username=f"bench-dr-{key.address[-6:]}",
            password=BENCH_PASSWORD,
            role=Role.DOCTOR,
            with_managed_key=False,
        )
        create_managed_key(user=user, private_key=key.key)
        Doctor.objects.create(user=user, hospital=hospital)
        tx = directory.functions.execute((2, hid, key.address, zero, 0, 0))
        w3.eth.wait_for_transaction_receipt(tx.transact({"from": admin_key.address}))
    indexer.sync_chain()
    return [key.address for key in doctor_keys]


def _patients(count: int) -> list[tuple[User, Any]]:
    accounts = [Account.create() for _ in range(count)]
    users = User.objects.bulk_create(
        User(
            username=f"bench-{a.address[2:14].lower()}",
            role=Role.PATIENT,
            eth_address=a.address,
            key_kind="wallet",
            password=UNUSABLE_PASSWORD,
        )
        for i, a in enumerate(accounts)
    )
    return list(zip(User.objects.filter(pk__in=[u.pk for u in users]).order_by("pk"), accounts, strict=True))


def _signed_grants(count: int, doctors: list[str]) -> list[consent_services.SignedGrant]:
    """`count` grants signed by distinct new patients (signing is the wallets' work: not timed)."""
    registry = client.contract("ConsentRegistry")
    deadline = int(time.time()) + 3600
    signed = []
    for index, (user, account) in enumerate(_patients(count)):
        payload = Grant(
            patient=account.address,
            grantee=doctors[index % len(doctors)],
            scope="chart",
            purpose=0,
            expires_at=0,
            version=0,
            deadline=deadline,
        ).typed_data(Domain(client.chain_id(), registry.address))
        signature = "0x" + account.sign_typed_data(full_message=payload).signature.hex()
        signed.append(consent_services.SignedGrant(user, payload, signature))
    return signed


def _relay_until_indexed(expected_active: int) -> None:
    while OutboxItem.objects.filter(status__in=["pending", "sent"]).exists():
        relayer.relay_once()
        indexer.sync_chain()
    active = Consent.objects.filter(status=ConsentStatus.ACTIVE).count()
    if active != expected_active:
        raise RuntimeError(f"only {active} of {expected_active} grants became active")


@contextmanager
def relayer_process() -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py relay --follow` in its own process on this database and chain, as a worker runs it."""
    env = os.environ | {
        "DATABASE_URL": current_database_url(),
        "ETH_RPC_URL": settings.ETH_RPC_URL,
        "RELAYER_PRIVATE_KEY": settings.RELAYER_PRIVATE_KEY,
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "relay", "--follow", "--interval", "0.02"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure_pipelined_grants(count: int, doctors: list[str], *, batch: int = 100) -> dict[str, Any]:
    """The production shape: this process accepts batches while a relayer process mines and indexes
    them; timed from the first submission until every grant is active. The relayer is warmed first
    with a few grants (a fresh process spends ~1.5 s on imports and codecs; a worker is long-running)."""
    warmup, signed = _signed_grants(10, doctors), _signed_grants(count, doctors)
    with relayer_process() as relay:

        def wait_until_active(total: int) -> None:
            while Consent.objects.filter(status=ConsentStatus.ACTIVE).count() < total:
                if relay.poll() is not None:
                    raise RuntimeError("the relayer process died")
                time.sleep(0.005)

        active = Consent.objects.filter(status=ConsentStatus.ACTIVE).count()
        consent_services.submit_signed_grants(grants=warmup)
        wait_until_active(active + len(warmup))
        started = time.perf_counter()
        for offset in range(0, count, batch):
            consent_services.submit_signed_grants(grants=signed[offset : offset + batch])
        wait_until_active(active + len(warmup) + count)
        return {"pipelined_per_s": count / (time.perf_counter() - started)}


def measure_relayed_grants(count: int, doctors: list[str], *, batch: int = 100) -> dict[str, Any]:
    """Signed grants in through the service, verified, outboxed, mined in batches and indexed: first one
    request per grant (`submit_signed_grant`), then `batch` per request (`submit_signed_grants`)."""
    single = _signed_grants(count, doctors)
    started = time.perf_counter()
    for grant in single:
        consent_services.submit_signed_grant(
            patient=grant.patient, typed_data=grant.typed_data, signature=grant.signature
        )
    single_accept_s = time.perf_counter() - started
    _relay_until_indexed(count)
    single_total_s = time.perf_counter() - started

    batched = _signed_grants(count, doctors)
    started = time.perf_counter()
    for offset in range(0, count, batch):
        results = consent_services.submit_signed_grants(grants=batched[offset : offset + batch])
        refused = [r for r in results if not isinstance(r, Consent)]
        if refused:
            raise RuntimeError(f"batch refused {len(refused)} grants: {refused[0]}")
    batch_accept_s = time.perf_counter() - started
    _relay_until_indexed(2 * count)
    batch_total_s = time.perf_counter() - started
    return {
        "single_accepted_per_s": count / single_accept_s,
        "single_relayed_per_s": count / single_total_s,
        "batch_accepted_per_s": count / batch_accept_s,
        "batch_relayed_per_s": count / batch_total_s,
    }


def measure_chain_limit_grants(count: int, doctors: list[str]) -> float:
    """Grants/s the node alone sustains: fresh signed grants, batched and encoded as the relayer does,
    sent by a bare loop (no database, no API, no indexing). The gap to `relayed_grants_per_s` is the
    relayer's (and the database's) share of the cost."""
    signed = _signed_grants(count, doctors)
    payloads = [{"message": g.typed_data["message"], "signature": g.signature} for g in signed]  # type: ignore[index]
    return float(measure_chain_limit(payloads)["items_per_s"])


def _fill_consents(total: int, doctors: list[str]) -> list[tuple[str, str, str]]:
    """`total` synthetic active consent rows (as the indexer would write them); returns probe triples."""
    probes: list[tuple[str, str, str]] = []
    batch: list[Consent] = []
    rng = random.Random(7)
    for index in range(total):
        patient = Web3.to_checksum_address("0x" + rng.randbytes(20).hex())
        grantee = doctors[index % len(doctors)]
        category = CATEGORIES[index % len(CATEGORIES)]
        scope = "chart" if index % 3 == 0 else f"category:{category}"
        batch.append(
            Consent(
                consent_key="0x" + rng.randbytes(32).hex(),
                patient_address=patient,
                grantee_address=grantee,
                scope=scope,
                scope_hash=scope_hash_hex(scope),
                purpose=index % 2,
                version=0,
                status=ConsentStatus.ACTIVE,
                granted_block=1 + index // 100,
            )
        )
        if index % max(1, total // 4000) == 0:
            probes.append((patient, grantee, category))
        if len(batch) == 20_000:
            Consent.objects.bulk_create(batch)
            batch.clear()
    Consent.objects.bulk_create(batch)
    return probes


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_checks(total: int, doctors: list[str], *, probes_wanted: int = 2000) -> dict[str, Any]:
    fill_started = time.perf_counter()
    probes = _fill_consents(total, doctors)
    fill_s = time.perf_counter() - fill_started
    samples = []
    allowed = 0
    for patient, grantee, category in (probes * 4)[:probes_wanted]:
        t0 = time.perf_counter()
        decision = consent_selectors.is_allowed(
            patient_address=patient, grantee_address=grantee, purpose=0, category=category
        )
        samples.append((time.perf_counter() - t0) * 1000)
        allowed += decision.allowed
    registry = client.contract("ConsentRegistry")
    chart, calls = bytes.fromhex(scope_hash_hex("chart")[2:]), []
    for patient, grantee, category in probes[:500]:
        category_hash = bytes.fromhex(scope_hash_hex(f"category:{category}")[2:])
        t0 = time.perf_counter()
        registry.functions.isAllowed(patient, grantee, b"\0" * 32, category_hash, 0).call()
        calls.append((time.perf_counter() - t0) * 1000)
    del chart
    return {
        "consents": Consent.objects.count(),
        "fill_s": fill_s,
        "check_p50_ms": statistics.median(samples),
        "check_p99_ms": _percentile(samples, 0.99),
        "checks_allowed": allowed,
        "checks": len(samples),
        "eth_call_p50_ms": statistics.median(calls),
        "eth_call_p99_ms": _percentile(calls, 0.99),
    }


# (grants, consents, indexer events) per size: the full run, --quick (make bench), and --smoke (the test
# that every figure is reported: the same code paths at sizes that say nothing about speed).
SIZES = {"full": (2000, 1_000_000, 20_000), "quick": (500, 100_000, 5_000), "smoke": (100, 5_000, 1_000)}


def run_benchmark(*, size: str, say: Say) -> dict[str, Any]:
    grants, consents, events = SIZES[size]
    with throwaway_database():
        # First, on its own chain and rolled back: a second anvil shares chain id 31337 with ours.
        say("indexer ...")
        indexed = benchmark_indexer(events)
        figures = _consent_figures(grants=grants, consents=consents, say=say)
    return figures | {"indexer_events_per_s": indexed["events_per_s"]}


def _consent_figures(*, grants: int, consents: int, say: Say) -> dict[str, Any]:
    with throwaway_chain() as node:
        say(f"throwaway anvil at {node.rpc_url}, database {connection.settings_dict['NAME']}")
        doctors = _setup_directory()
        say("measuring gas ...")
        gas = measure_gas(client.get_web3(), {})
        say(f"relaying {grants} signed grants ...")
        relayed = measure_relayed_grants(grants, doctors)
        say(f"relaying {grants * 4} signed grants with a relayer process beside ...")
        pipelined = measure_pipelined_grants(grants * 4, doctors)
        say(f"sending {grants * 4} signed grants straight to the node ...")
        chain_limit = measure_chain_limit_grants(grants * 4, doctors)
        say(f"filling {consents:,} consents and timing checks ...")
        checks = measure_checks(consents, doctors)
    return {
        "database": connection.vendor,
        "gas_grant_single": gas["grantBySig_single"],
        "gas_grant_batched_per_item": gas["grantBatch_per_item"],
        "gas_revoke_batched_per_item": gas["revokeBatch_per_item"],
        "gas_revoke_single": gas["revokeBySig_single"],
        # Signed grants submitted 100 to a request (POST /api/consents/batch) while a relayer process
        # mines and indexes them, as the Celery worker does beside the API; first submission to last active.
        "relayed_grants_per_s": round(pipelined["pipelined_per_s"], 1),
        # The same signed batches sent straight to the node by a bare loop: what the chain alone allows.
        "chain_limit_grants_per_s": round(chain_limit, 1),
        # The same, one process doing both in turn.
        "relayed_grants_per_s_sequential": round(relayed["batch_relayed_per_s"], 1),
        "accepted_grants_per_s_batched": round(relayed["batch_accepted_per_s"], 1),
        # The same, one request per grant (POST /api/consents).
        "relayed_grants_per_s_one_per_request": round(relayed["single_relayed_per_s"], 1),
        "accepted_grants_per_s_one_per_request": round(relayed["single_accepted_per_s"], 1),
        "consents_present": checks["consents"],
        "check_p50_ms": round(checks["check_p50_ms"], 3),
        "check_p99_ms": round(checks["check_p99_ms"], 3),
        "eth_call_p50_ms": round(checks["eth_call_p50_ms"], 3),
        "check_speedup_vs_eth_call_p50": round(checks["eth_call_p50_ms"] / checks["check_p50_ms"], 1),
    }
