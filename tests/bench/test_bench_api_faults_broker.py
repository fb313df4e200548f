"""`manage.py bench_api --faults` on PostgreSQL and a Redis broker: the bench runs a redis-server of its own
(the Redis CELERY_BROKER_URL names is left alone), and besides the chain, worker, web and celery faults
kills that redis-server under load and starts it again, empty. Asserted: the broker fault happened, no read
failed while the broker (or the chain, or a Celery process) was away, the Celery worker consumed through
the new server again, every grant (those accepted while the broker was down too) was mined once, every
allowed open logged once, the outbox drained, and the audit chain is whole. The chain's SIGKILL is left out
here (`--no-chain-kill`): with it, one run in four left the 3 grants of the lost blocks unmined (defect C,
README "Faults under load").

It runs on CI's PostgreSQL + Redis pass (the bench makes its own `<name>_bench_api` database beside the
test database: hence the database fixture, which lets it connect) and is skipped on the embedded pass,
where `test_bench_api_faults.py` runs the same schedule without a broker process."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bench.own_state import is_redis

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not is_redis(settings.CELERY_BROKER_URL),
        reason="the broker fault needs PostgreSQL and a Redis broker (CI's second pass)",
    ),
]

READS = ("open", "list_records", "check", "chart", "access_log")
SHARED_REDIS_PORT = ":6379"


def test_broker_restart_under_load_loses_nothing_and_keeps_reads_working(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The command measures in a child process of its own state: its table reaches this process's stdout.
    call_command(
        "bench_api",
        "--faults",
        "--clients=4",
        "--warmup=1",
        "--seconds=50",
        "--fault-calm=4",
        "--fault-down=4",
        "--records=1",
        "--no-chain-kill",
    )
    out = capfd.readouterr().out
    print(out)  # the tables, shown when an assertion fails
    figures = json.loads(out.strip().splitlines()[-1])

    assert figures["database"] == "postgresql"
    assert figures["broker"].startswith("redis (the bench's own")
    assert SHARED_REDIS_PORT not in figures["broker"]
    assert figures["faults_done"] == 5, figures["faults_not_applicable"]
    assert figures["faults_not_applicable"].startswith("chain_kill: not done")
    assert figures["fault_broker_down_s"] >= 4
    assert figures["errors_before_faults"] == 0
    # The broker is not on the read path: no read fails while it is away (nor while the chain or a
    # Celery process are).
    for fault in ("chain", "worker", "broker", "celery"):
        failed_reads = [op for op in READS if f"{op}:" in figures[f"fault_{fault}_errors_by_op"]]
        assert failed_reads == [], (fault, figures[f"fault_{fault}_errors_by_op"])
    assert figures["grants_submitted"] > 0
    assert figures["grants_recorded_twice"] == 0
    assert figures["access_log_mismatch"] == 0
    assert figures["verify_audit_ok"] is True
    assert figures["fault_celery_down_s"] > 0
    # Grants accepted while the broker was down were mined (the relayer process needs no kick), and the
    # Celery worker consumes through the new, empty server.
    assert figures["fault_broker_unmined_grants"] == 0
    assert figures["fault_broker_worker_back_s"] is not None
    assert figures["grants_mined"] == figures["grants_submitted"]
    assert figures["outbox_unsettled"] == ""
    assert figures["grants_off_chain"] == 0 and figures["index_events_off_chain"] == 0
