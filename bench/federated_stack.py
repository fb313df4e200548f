"""`round_overhead_ms`: what the protocol adds to a round on the real stack, beyond local training.

The production shape on this machine, in a throwaway state folder (its own SQLite database or a
`bench_` PostgreSQL database, its own anvil, its own content store): gunicorn, the Celery worker (the
coordinator), the relayer and the indexer (demo/processes.py), and one `hospital_worker` process per
hospital (demo/training.py), on the broker the caller names (Redis, or the embedded SQLite broker).
5 hospitals, 50 demo charts each, every patient consenting to TRAINING at her hospital; a logistic
model, 1 local epoch, FedAvg, quorum 5.

A round's overhead is the time from its start to the next round's start (dispatch, release, dataset,
upload, signature checks, aggregation, evaluation, the model version and the next round's pin) less its
local training (the slowest hospital's `train_s`, the critical path); the figure is the median over the
training rounds after the first (the first also pays each worker's one decryption of the job's records).

`run_in_child` starts this module's `measure` in a fresh `manage.py bench_federated --stack-child`
process, so that every setting (state folder, database, broker, keys) is the child's own and every
process it starts inherits the same environment.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from access.identity import services as identity_services
from access.models import Hospital, Role
from contracts import client
from contracts.drain import drain_outbox
from contracts.node import free_port
from demo import people, processes
from demo.charts import import_demo_charts
from demo.training import create_approved_job, export_hospital_keys, grant_training_consents, hospital_workers
from federated import rounds
from federated.models import TrainingJob, TrainingRound

HOSPITALS = 5
PATIENTS_PER_HOSPITAL = 50
ROUNDS = 12
RESULT_PREFIX = "ROUND_OVERHEAD_JSON "


def run_in_child(*, broker_url: str, database_url: str | None, timeout_s: float = 900.0) -> dict[str, Any]:
    """Run `measure` in a fresh process with its own state folder and chain port; its figures."""
    with tempfile.TemporaryDirectory(prefix="hh-bench-rounds-") as folder:
        env = {
            name: value
            for name, value in os.environ.items()
            if name
            not in (
                "DATABASE_URL",
                "HEALTHHASH_KEK",
                "RELAYER_PRIVATE_KEY",
                "ETH_RPC_URL",
                "CELERY_BROKER_URL",
            )
        }
        env |= {"HEALTHHASH_VAR_DIR": folder, "DEV_CHAIN_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
        if broker_url:  # else the embedded broker in the child's state folder
            env["CELERY_BROKER_URL"] = broker_url
        if database_url:  # else the child's own SQLite file
            _fresh_postgres_database(database_url)
            env["DATABASE_URL"] = database_url
        child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench_federated", "--stack-child"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.terminate()  # SIGTERM: the child unwinds and stops every process it started
            stdout, stderr = child.communicate(timeout=120)
        for line in stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                return dict(json.loads(line.removeprefix(RESULT_PREFIX)))
        tail = "\n".join((stdout + stderr).splitlines()[-30:])
        raise RuntimeError(f"the round-overhead run ended without figures (exit {child.returncode}):\n{tail}")


def _fresh_postgres_database(database_url: str) -> None:
    """Drop and create the database the URL names (on its server's `postgres` database)."""
    import psycopg

    server, _, name = database_url.rpartition("/")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
        )
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def measure() -> dict[str, Any]:
    """In the child: set up the world, run the job, return the figures."""
    call_command("migrate", verbosity=0)
    with client.running_dev_chain():
        world = _world()
        web = processes.WebOptions("127.0.0.1", free_port(), 2, 4)
        processes.child_environment(log_format="plain")
        processes.LOG_DIR = settings.VAR_DIR / "logs"
        processes.release_database()
        with processes.running_processes(web, lambda _line: None) as children:
            processes.wait_until_healthy(web.url, children)
            export_hospital_keys(world)
            with hospital_workers(world, api_url=web.url):
                job = create_approved_job(
                    world, name="round overhead", rounds=ROUNDS, local_epochs=1, round_timeout_s=120
                )
                rounds.start_job(job=job)
                job, cpu = _wait(job, timeout_s=600.0)
    return _figures(job) | _machine_load(job, cpu)


def _machine_cpu_s() -> tuple[float, float, float]:
    """(now, busy, idle): the wall clock and the CPU seconds of the whole machine since boot, summed over
    its cores (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return time.time(), (sum(fields[:8]) - idle) / ticks, idle / ticks


def _machine_load(job: TrainingJob, cpu: list[tuple[float, float, float]]) -> dict[str, Any]:
    """What the measured rounds cost the machine, every process on it together (the web and Celery
    workers, the hospital workers, the relayer, the indexer, anvil, the database): busy CPU per round,
    training included, and the share of the cores that were busy. A share near 1 says a round's time is
    CPU time on this machine's cores, not waiting; then the period cannot be shorter than the CPU per
    round over the number of cores."""
    train = list(job.training_rounds.filter(kind=TrainingRound.Kind.TRAIN).order_by("number"))
    if len(train) < 3 or not cpu:
        return {}
    first, last = train[1].started_at.timestamp(), train[-1].started_at.timestamp()
    start = min(cpu, key=lambda sample: abs(sample[0] - first))
    end = min(cpu, key=lambda sample: abs(sample[0] - last))
    busy, idle = end[1] - start[1], end[2] - start[2]
    if end[0] <= start[0] or busy + idle <= 0:
        return {}
    rounds_in_window = (end[0] - start[0]) / ((last - first) / (len(train) - 2))
    return {
        "machine_cpu_per_round_ms": round(1000 * busy / rounds_in_window, 1),
        "machine_busy_share": round(busy / (busy + idle), 3),
    }


def _world() -> people.DemoWorld:
    password = people.demo_password()
    admin = people.consortium_admin(password)
    call_command("deploy_contracts", consortium_admin=admin.eth_address, stdout=io.StringIO())
    world = people.DemoWorld(password=password, consortium_admin=admin)
    for index in range(HOSPITALS):
        slug = f"bench-h{index}"
        hospital = Hospital.objects.filter(slug=slug).first()
        if hospital is None:
            hospital_admin = identity_services.register_user(
                username=f"admin-{slug}", password=password, role=Role.HOSPITAL_ADMIN
            )
            hospital = identity_services.create_hospital(
                slug=slug, name=f"Bench {index}", admin=hospital_admin
            )
        world.hospitals.append(hospital)
    people.register_on_chain(world)
    for hospital in world.hospitals:
        hospital.refresh_from_db()
    patients = people.create_table_patients(HOSPITALS * PATIENTS_PER_HOSPITAL)
    import_demo_charts(patients=patients, rows_per_patient=1, hospitals=world.hospitals)
    grant_training_consents(world, patients)
    drain_outbox()
    return world


def _wait(job: TrainingJob, *, timeout_s: float) -> tuple[TrainingJob, list[tuple[float, float, float]]]:
    """The job once it has ended, and the machine's CPU counters sampled every 0.05 s meanwhile."""
    deadline = time.monotonic() + timeout_s
    finished = (TrainingJob.Status.DONE, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED)
    cpu = [_machine_cpu_s()]
    polled = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - polled >= 0.2:
            polled = time.monotonic()
            job.refresh_from_db()
            if job.status in finished:
                return job, cpu
        time.sleep(0.05)
        cpu.append(_machine_cpu_s())
    raise TimeoutError(f"job {job.pk} still {job.status} after {timeout_s:.0f} s")


def _figures(job: TrainingJob) -> dict[str, Any]:
    if job.status != TrainingJob.Status.DONE:
        raise RuntimeError(f"the job ended {job.status}: {job.failure_reason}")
    train = list(job.training_rounds.filter(kind=TrainingRound.Kind.TRAIN).order_by("number"))
    overheads, periods, training = [], [], []
    for current, following in itertools.pairwise(train):
        period = (following.started_at - current.started_at).total_seconds()
        local = float(current.timings.get("local_training_s") or 0.0)
        periods.append(period)
        training.append(local)
        if current.number > 1:
            overheads.append(period - local)
    samples = train[-1].metrics.get("samples", {}) if train else {}
    return _phases(train) | {
        "round_overhead_ms": round(1000 * statistics.median(overheads), 1),
        "round_overhead_p90_ms": round(1000 * sorted(overheads)[int(0.9 * (len(overheads) - 1))], 1),
        "round_period_ms": round(1000 * statistics.median(periods), 1),
        "local_training_ms": round(1000 * statistics.median(training), 1),
        "rounds_measured": len(overheads),
        "hospitals": len(samples),
        "patients": sum(samples.values()),
    }


def _phases(train: list[TrainingRound]) -> dict[str, Any]:
    """Where a measured round's time goes (medians over the rounds after the first, ms): the dispatch, the
    slowest hospital's release and dataset, its time from dispatch to its update's arrival less local
    training (the broker hop, plan check, evaluation, upload and the update's checks), the wait from the
    last update to the model version, and from the version to the next round's start."""
    phases: dict[str, list[float]] = {}

    def add(name: str, seconds: float | None) -> None:
        if seconds is not None:
            phases.setdefault(name, []).append(1000 * seconds)

    for current, following in itertools.pairwise(train):
        if current.number <= 1 or current.finished_at is None:
            continue
        updates = [
            (u.dispatched_at, u.received_at, u.timings)
            for u in current.updates.all()
            if u.dispatched_at is not None and u.received_at is not None
        ]
        if not updates:
            continue
        add("dispatch", (max(sent for sent, _, _ in updates) - current.started_at).total_seconds())
        for name in ("release_s", "dataset_s", "upload_s"):
            add(name.removesuffix("_s"), max(float(t.get(name) or 0.0) for _, _, t in updates))
        worker_phases = ("release_s", "dataset_s", "train_s", "upload_s")
        add(
            "worker_other",
            max(
                (received - sent).total_seconds() - sum(float(t.get(k) or 0.0) for k in worker_phases)
                for sent, received, t in updates
            ),
        )
        add("to_version", (current.finished_at - max(received for _, received, _ in updates)).total_seconds())
        add("aggregation", current.timings.get("aggregation_s"))
        add("to_next_round", (following.started_at - current.finished_at).total_seconds())
    return {f"phase_{name}_ms": round(statistics.median(values), 1) for name, values in phases.items()}
