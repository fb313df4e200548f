"""`manage.py hospital_worker` as production runs it: its own process on a real broker (the embedded SQLite
broker, or Redis db 6 when CELERY_BROKER_URL says Redis, as CI's second run does), consuming the tasks the
coordinator dispatches to `hospital.general-hospital` and delivering its moments and its update through
the live API, while the database is unreachable from it and its KEK is another, random one. A private
redis-server, killed with SIGKILL and started again mid-job, shows that a broker restart loses no round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from contracts.node import free_port, start_anvil
from federated import rounds
from federated.models import RoundUpdate, TrainingJob
from healthhash.celery import app as celery_app
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD
from tests.federated.release_setup import _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.federated.worker_setup import (  # noqa: F401  (fixtures)
    Federation,
    federation_fixture,
    registry_fixture,
    training_registry_fixture,
)

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_BROKER = "redis://127.0.0.1:6379/6"
# A PostgreSQL port nothing listens on: any ORM use in the worker fails its task.
UNREACHABLE_DATABASE = "postgres://healthhash:nothing@127.0.0.1:9/unreachable"
WAIT_S = 120


def _brokers() -> list[str]:
    """The suite's own broker: CI's first pass runs these on the embedded one, its second on Redis."""
    return ["redis"] if settings.CELERY_BROKER_URL.startswith("redis") else ["embedded"]


@pytest.fixture(name="broker_url", params=_brokers())
def broker_url_fixture(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A real broker for this test, and the app in this process publishing to it (the suite parks
    messages in memory://): new connection and producer pools for the new URL."""
    if request.param == "redis":
        url = REDIS_BROKER
        redis.Redis.from_url(url).flushdb()
    else:
        url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    _publish_to(url, monkeypatch)
    yield url
    if request.param == "redis":
        redis.Redis.from_url(url).flushdb()


def _publish_to(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery's conf.broker_url reads the environment first
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


@dataclass
class RedisServer:
    """A redis-server of this test's own on a free port, keeping nothing on disk (as the machine's is
    configured): killed, it comes back empty, every message it held lost."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=1).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture(name="private_redis")
def private_redis_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    _publish_to(server.url, monkeypatch)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(name="key_file")
def key_file_fixture(federation: Federation, tmp_path: Path) -> Path:
    """General Hospital's key, exported by its admin for the worker."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    key_file = tmp_path / "general.key"
    call_command(
        "export_hospital_key",
        "--hospital",
        "general-hospital",
        "--out",
        str(key_file),
        "--password-file",
        str(password_file),
    )
    return key_file


def _start_worker(
    federation: Federation, broker_url: str, key_file: Path, tmp_path: Path, *, name: str = "worker"
) -> tuple[subprocess.Popen[bytes], Path]:
    """`manage.py hospital_worker` for General Hospital, started and ready; its log file."""
    env = os.environ | {
        "DATABASE_URL": UNREACHABLE_DATABASE,
        "HEALTHHASH_KEK": new_kek_entry("not-the-servers-kek"),
        "ETH_RPC_URL": settings.ETH_RPC_URL,
        "CELERY_BROKER_URL": broker_url,
        "HEALTHHASH_VAR_DIR": str(tmp_path / f"{name}-var"),
        "IPFS_API_URL": "",
    }
    command = [
        sys.executable,
        "manage.py",
        "hospital_worker",
        "--hospital",
        "general-hospital",
        "--key-file",
        str(key_file),
        "--api-url",
        federation.api_url,
        "--state-dir",
        str(tmp_path / "worker-state"),  # the hospital's ledger: the same for a replacement worker
        "--store-dir",
        str(settings.IPFS_LOCAL_DIR),
    ]
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    _wait_for(lambda: "ready." in log_path.read_text(), process, log_path, what="the worker to start")
    return process, log_path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(name="worker")
def worker_fixture(
    federation: Federation, broker_url: str, key_file: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    process, log_path = _start_worker(federation, broker_url, key_file, tmp_path)
    try:
        yield process, log_path
    finally:
        _stop(process)


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, *, what: str
) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process.poll() is None, f"the worker died waiting for {what}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.25)


def _status(job: TrainingJob, number: int, federation: Federation) -> str:
    row = RoundUpdate.objects.filter(
        round__job=job, round__number=number, hospital=federation.personas.general
    ).first()
    return "" if row is None else row.status


def test_the_hospital_worker_process_delivers_its_rounds_without_the_database(
    federation: Federation, worker: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, log = worker
    job = federation.start(federation.job())  # round 0 goes to hospital.general-hospital on the broker

    _wait_for(lambda: _status(job, 0, federation) != "dispatched", process, log, what="round 0's moments")
    assert _status(job, 0, federation) == RoundUpdate.Status.ACCEPTED
    assert rounds.aggregate_round(job=job, number=0) is not None  # round 1 is dispatched after commit

    _wait_for(lambda: _status(job, 1, federation) != "dispatched", process, log, what="round 1's update")
    row = RoundUpdate.objects.get(round__job=job, round__number=1, hospital=federation.personas.general)
    assert row.status == RoundUpdate.Status.ACCEPTED, (row.reason_code, row.reason_detail)
    assert row.sample_count == 1 and row.signature.startswith("0x")
    # The worker's own account of it, once the answer reached it.
    _wait_for(lambda: "round 1: accepted" in log.read_text(), process, log, what="the worker's log")
    text = log.read_text()
    assert "round 0: moments_sent" in text
    assert "OperationalError" not in text and "Traceback" not in text


def test_a_worker_killed_mid_task_loses_no_round(
    federation: Federation,
    worker: tuple[subprocess.Popen[bytes], Path],
    broker_url: str,
    key_file: Path,
    tmp_path: Path,
) -> None:
    """kill -9 while the worker trains: the message dies with it (the SQLite transport never hands a taken
    message back; Redis only after its visibility timeout). The sweep re-sends the round to the silent
    hospital and the replacement worker, started as a supervisor would, delivers it; the round counts once."""
    process, log = worker
    job = federation.start(federation.job(local_epochs=20_000))  # one row, 20,000 epochs: seconds of training
    _wait_for(lambda: _status(job, 0, federation) != "dispatched", process, log, what="round 0's moments")
    assert rounds.aggregate_round(job=job, number=0) is not None
    _wait_for(
        lambda: "local_round" in log.read_text().split("round 0: moments_sent")[-1],
        process,
        log,
        what="round 1's task",
    )
    process.kill()  # SIGKILL, mid-task
    process.wait()
    assert "round 1: accepted" not in log.read_text()  # it died training
    assert _status(job, 1, federation) == RoundUpdate.Status.DISPATCHED

    replacement, replacement_log = _start_worker(
        federation, broker_url, key_file, tmp_path, name="replacement"
    )
    try:
        RoundUpdate.objects.filter(round__job=job, round__number=1).update(
            dispatched_at=timezone.now() - timedelta(seconds=settings.TRAINING_REDISPATCH_AFTER_S + 1)
        )
        assert rounds.sweep_rounds()["resent"] == 1
        _wait_for(
            lambda: _status(job, 1, federation) != "dispatched",
            replacement,
            replacement_log,
            what="round 1's update from the replacement",
        )
        row = RoundUpdate.objects.get(round__job=job, round__number=1, hospital=federation.personas.general)
        assert row.status == RoundUpdate.Status.ACCEPTED, (row.reason_code, row.reason_detail)
        assert RoundUpdate.objects.filter(round__job=job, round__number=1).count() == 1
    finally:
        _stop(replacement)


def test_a_broker_killed_and_restarted_mid_job_loses_no_round(
    federation: Federation, private_redis: RedisServer, key_file: Path, tmp_path: Path
) -> None:
    """kill -9 of the broker between rounds: the next round's task cannot be sent and nothing is queued
    anywhere. After the broker comes back (empty), the sweep sends what the broker never took, the worker
    has reconnected by itself, and the round is delivered and counted once."""
    process, log = _start_worker(federation, private_redis.url, key_file, tmp_path)
    try:
        job = federation.start(federation.job())
        _wait_for(lambda: _status(job, 0, federation) != "dispatched", process, log, what="round 0's moments")

        private_redis.kill()
        assert rounds.aggregate_round(job=job, number=0) is not None  # round 1 starts; its send fails
        row = RoundUpdate.objects.get(round__job=job, round__number=1, hospital=federation.personas.general)
        assert row.status == RoundUpdate.Status.DISPATCHED and row.dispatched_at is None  # never sent

        private_redis.start()
        resent = 0

        def delivered() -> bool:
            nonlocal resent
            if _status(job, 1, federation) != "dispatched":
                return True
            resent += rounds.sweep_rounds()["resent"]  # what a beat sweep does every few seconds
            return False

        _wait_for(delivered, process, log, what="round 1's update after the broker restart")
        row.refresh_from_db()
        assert row.status == RoundUpdate.Status.ACCEPTED, (row.reason_code, row.reason_detail)
        assert resent >= 1 and RoundUpdate.objects.filter(round__job=job, round__number=1).count() == 1
        assert process.poll() is None  # the same worker, reconnected: no restart needed
        _wait_for(lambda: "round 1: accepted" in log.read_text(), process, log, what="the worker's log")
    finally:
        _stop(process)


def test_a_worker_whose_node_is_another_chain_refuses_to_start(
    federation: Federation, key_file: Path, tmp_path: Path
) -> None:
    other_chain = start_anvil(chain_id=4242)
    try:
        finished = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "hospital_worker",
                "--hospital",
                "general-hospital",
                "--key-file",
                str(key_file),
                "--api-url",
                federation.api_url,
                "--state-dir",
                str(tmp_path / "worker-state"),
            ],
            cwd=settings.BASE_DIR,
            env=os.environ
            | {
                "DATABASE_URL": UNREACHABLE_DATABASE,
                "ETH_RPC_URL": other_chain.rpc_url,
                "HEALTHHASH_VAR_DIR": str(tmp_path / "worker-var"),
            },
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    finally:
        other_chain.stop()
    assert finished.returncode != 0
    assert "answers for chain 4242, the API runs on chain 31337" in finished.stderr
    assert not (tmp_path / "worker-state").exists()
