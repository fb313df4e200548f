"""The records benchmark behind `manage.py bench_records`: sealing vs raw OpenSSL, store add vs SHA-256,
open_record latency through a consent with 10^5 records present, bulk import rate, gas per record
anchored (Merkle roots of batches of 100 and 1,000), audit verification.

Runs on a throwaway database, a throwaway anvil and a temporary block store (bench.consent's
helpers), so it never touches the demo's rows, chain or blobs. Ratios are against baselines measured in
the same run.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.test import override_settings
from django.utils import timezone
from eth_account import Account

from access.consent.scopes import scope_hash_hex
from access.identity.users import address_of
from access.models import Consent, ConsentStatus, Doctor, Hospital, Purpose, Role, User
from bench.consent import throwaway_chain, throwaway_database
from contracts.deploy import deploy_contracts
from contracts.drain import drain_outbox
from contracts.models import ChainTx
from ehr import anchoring, records, storage
from ehr.models import FHIR_JSON, Record
from healthhash import sealing

Say = Callable[[str], None]


def _observation(index: int, *, pad_to: int = 0) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "valueQuantity": {"value": 10 + index % 70 / 10, "unit": "g/dL"},
    }
    if pad_to:
        resource["note"] = [{"text": "x" * max(0, pad_to - 330)}]  # about pad_to bytes of JSON
    return resource


def _users(count: int, prefix: str, role: str) -> list[User]:
    rows = [
        User(
            username=f"{prefix}{i}",
            role=role,
            eth_address=Account.create().address,
            key_kind="wallet",
            password="!",  # noqa: S106 - an unusable password hash: no login
        )
        for i in range(count)
    ]
    User.objects.bulk_create(rows, batch_size=1000)
    return list(User.objects.filter(username__startswith=prefix).order_by("pk"))


def _register_doctor(doctor: User) -> None:
    """The doctor active at an active hospital, as the indexer writes it from the Directory's events."""
    (admin,) = _users(1, "bench-radmin", Role.HOSPITAL_ADMIN)
    hospital = Hospital.objects.create(
        slug="bench-records",
        name="Bench",
        hospital_id="0x" + "11" * 32,
        account_address=Account.create().address,
        admin=admin,
        active=True,
        registered_block=1,
    )
    Doctor.objects.create(user=doctor, hospital=hospital, active=True, registered_block=1)


def _chart_consent(patient: User, doctor: User) -> None:
    """An active chart consent row, as the indexer writes it (the relayed path is bench_consent's)."""
    Consent.objects.create(
        consent_key="0x" + uuid.uuid4().hex * 2,
        patient=patient,
        patient_address=address_of(patient),
        grantee_address=address_of(doctor),
        grantee_user=doctor,
        scope="chart",
        scope_hash=scope_hash_hex("chart"),
        purpose=Purpose.TREATMENT,
        version=0,
        status=ConsentStatus.ACTIVE,
        granted_block=1,
        granted_at=timezone.now(),
    )


def measure_import(patient: User, count: int) -> float:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": _observation(i)} for i in range(count)],
    }
    started = time.perf_counter()
    report = records.import_bundle(actor=patient, patient=patient, bundle=bundle)
    elapsed = time.perf_counter() - started
    if len(report.records) != count:
        raise RuntimeError(f"imported {len(report.records)} of {count}")
    return count / elapsed


def fill_records(total: int, *, patients: list[User], template: Record) -> None:
    """Filler rows so lookups run against a realistic table size (their blobs are never opened)."""
    rng = random.Random(11)
    batch: list[Record] = []
    for index in range(total):
        owner = patients[index % len(patients)]
        batch.append(
            Record(
                patient=owner,
                patient_address=address_of(owner),
                category="laboratory",
                resource_type="Observation",
                content_type=FHIR_JSON,
                created_by=owner,
                cid=template.cid,
                sealed_size=template.sealed_size,
                digest=rng.randbytes(32).hex(),
                wrapped_key=bytes(template.wrapped_key),
                key_id=template.key_id,
            )
        )
        if len(batch) == 5000:
            Record.objects.bulk_create(batch)
            batch = []
    Record.objects.bulk_create(batch)


def measure_anchoring(sizes: tuple[int, ...] = (100, 1000)) -> dict[str, float]:
    """Batch, relay and index the oldest records: the gas one record costs on chain, and the batcher's time.

    Needs that many records waiting; the opens measured after it then check a real Merkle proof.
    """
    figures: dict[str, float] = {}
    # The throwaway chain starts empty; only the Anchors contract is used, any consortium admin will do.
    deploy_contracts(consortium_admin=Account.create().address, say=lambda _: None)
    for size in sizes:
        started = time.perf_counter()
        batch = anchoring.anchor_record_batch(max_records=size, min_records=size)
        if batch is None:
            raise RuntimeError(f"fewer than {size} records wait for an anchor")
        figures[f"anchor_batch_{size}_ms"] = (time.perf_counter() - started) * 1000
        drain_outbox(timeout_s=120)
        batch.refresh_from_db()
        gas = ChainTx.objects.get(tx_hash=batch.anchored_tx_hash).gas_used or 0
        figures[f"record_anchor_gas_per_record_{size}"] = gas / size
    return figures


def measure_open(doctor: User, record_ids: list[uuid.UUID], probes: int) -> dict[str, float]:
    rng = random.Random(5)
    for record_id in record_ids[:20]:  # warm caches and connections
        records.open_record(record_id=record_id, actor=doctor)
    timings = []
    for _ in range(probes):
        record_id = rng.choice(record_ids)
        started = time.perf_counter()
        opened = records.open_record(record_id=record_id, actor=doctor)
        timings.append((time.perf_counter() - started) * 1000)
        if opened.decision.reason != "consent":
            raise RuntimeError("benchmark open did not go through a consent")
    timings.sort()
    return {
        "open_record_p50_ms": statistics.median(timings),
        "open_record_p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
    }


def _db_figures(*, quick: bool, say: Say) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    patients = _users(200, "bench-rp", Role.PATIENT)
    (doctor,) = _users(1, "bench-rdr", Role.DOCTOR)
    _register_doctor(doctor)
    probe_patient = patients[0]
    _chart_consent(probe_patient, doctor)

    n_import = 1000 if quick else 5000
    say(f"importing {n_import} FHIR resources (bulk path)...")
    figures["import_records_per_s"] = measure_import(patients[1], n_import)

    say("creating 200 records of 4 KiB to open...")
    big = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": _observation(i, pad_to=4096)} for i in range(200)],
    }
    probe_ids = [
        r.id for r in records.import_bundle(actor=probe_patient, patient=probe_patient, bundle=big).records
    ]
    size = Record.objects.get(pk=probe_ids[0]).sealed_size
    say("anchoring records as Merkle roots of batches of 100 and 1,000 (relayed, mined, indexed)...")
    figures.update(measure_anchoring())
    target = 10_000 if quick else 100_000
    say(f"filling the table to {target:,} records...")
    fill_records(
        target - Record.objects.count(), patients=patients[2:], template=Record.objects.get(pk=probe_ids[0])
    )
    figures["records_present"] = Record.objects.count()
    figures["open_record_size_bytes"] = size
    probes = 500 if quick else 2000
    say(f"opening {probes} records as a doctor through a consent...")
    figures.update(measure_open(doctor, probe_ids, probes))
    try:
        from access.audit.verify import benchmark_verify
    except ImportError:
        say("access.audit.verify.benchmark_verify is not there: audit_verify_entries_per_s left out")
    else:
        n = 20_000 if quick else 100_000
        say(f"verifying {n:,} audit entries...")
        figures["audit_verify_entries_per_s"] = benchmark_verify(n)["entries_per_s"]
    return figures


def run_benchmark(*, quick: bool, say: Say) -> dict[str, Any]:
    say("sealing 64 MiB and 4 KiB against raw OpenSSL AES-256-GCM...")
    sealed = sealing.benchmark_sealing(repeats=3 if quick else 5)
    figures: dict[str, Any] = {
        "seal_gbps": sealed["seal_gbps"],
        "openssl_gcm_gbps": sealed["openssl_gcm_gbps"],
        "seal_vs_openssl": sealed["seal_gbps"] / sealed["openssl_gcm_gbps"],
        "seal_4k_us": sealed["seal_4k_us"],
        "pycryptodome_gcm_gbps": sealed["pycryptodome_gcm_gbps"],
    }
    with tempfile.TemporaryDirectory(prefix="hh-bench-store-", dir=_scratch()) as folder:
        say("storing 64 MiB against plain SHA-256...")
        stored = storage.benchmark_store(Path(folder))
        figures.update(
            store_add_gbps=stored["store_add_gbps"],
            sha256_gbps=stored["sha256_gbps"],
            store_add_vs_sha256=stored["store_add_vs_sha256"],
        )
    with (
        tempfile.TemporaryDirectory(prefix="hh-bench-ipfs-", dir=_scratch()) as blobs,
        throwaway_database(),
        throwaway_chain(),
        # The per-actor record quota guards the relayer's gas budget in production; the benchmark
        # imports far more than a day's quota on purpose.
        override_settings(
            IPFS_LOCAL_DIR=Path(blobs),
            IPFS_API_URL="",
            KEY_ENCRYPTION_KEYS=sealing.new_kek_entry("bench"),
            RECORDS_PER_DAY=0,
        ),
    ):
        figures.update(_db_figures(quick=quick, say=say))
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in figures.items()}


def _scratch() -> str | None:
    # The block store writes with O_DIRECT where it can; /tmp may be tmpfs, so prefer the project's var/.
    from django.conf import settings

    folder = Path(settings.VAR_DIR) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)
