"""`manage.py bench_api [--clients 16] [--seconds 30]`: the API under load, on the production shape.

It runs in a state of its own (a folder under var/tmp: database, store, secrets, broker; a fresh
PostgreSQL database `<name>_bench_api` when DATABASE_URL is PostgreSQL; its own dev chain on a free
port): the command starts itself again inside that state, starts `manage.py serve` on a free port,
gives the demo consortium records and consents, then drives doctors, patients and a granting patient
concurrently (bench/api_load.py). Per operation: requests/s, p50, p99, errors (any answer but the
expected one). For the run: every allowed open has exactly one access-log entry, the grants submitted
during the load were mined, and `verify_audit` finds no break. A table, then one JSON line.

`--faults` (default off) runs a fault schedule during the load (bench/api_faults.py): the dev chain stopped
and started again with its state, the Celery worker's pool process killed, one gunicorn worker killed,
the dev chain killed (SIGKILL: it comes back rewound to its last periodic state dump), on a Redis broker
the broker killed and started again, and the Celery worker's main process killed, a calm period before
each. Per fault: how long it was down, the errors it cost by operation, and the seconds of degraded
service; the run's checks (one log entry per open, grants mined once and on the chain's own branch, the
index on that branch, the outbox drained, audit) must hold all the same.

On a Redis broker (CELERY_BROKER_URL redis://), with or without `--faults`, the bench runs a redis-server
of its own on a free port (bench/own_state.py) and points the production shape at it: the broker, and a
CACHE_URL or CELERY_RESULT_BACKEND on Redis too. The Redis the caller names is never touched.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench import api_world
from bench.api_faults import FaultCost, FaultSchedule, errors_before, fault_costs
from bench.api_load import EXPECTED, Persona, Sample, run_load, split_clients
from bench.own_state import (
    OwnRedis,
    is_redis,
    own_redis,
    own_state,
    run_again_inside,
    sigterm_unwinds,
    stop_signals,
)
from bench.report import report_figures
from contracts.node import free_port
from demo import processes
from healthhash.database_url import current_database_url

INSIDE = "HEALTHHASH_BENCH_API_INSIDE"
OWN_REDIS_PORT = "HEALTHHASH_BENCH_API_REDIS_PORT"  # inside: the port of the bench's own redis-server
# Redis URLs of the caller's that the bench points at its own Redis instead (a database each)
REDIS_URLS = {"CELERY_BROKER_URL": 0, "CACHE_URL": 1, "CELERY_RESULT_BACKEND": 2}
TARGETS = {
    "sqlite": {
        "open_p99_ms": ("<=", 250.0),
        "errors": ("<=", 0),
        "access_log_mismatch": ("<=", 0),
        "grants_recorded_twice": ("<=", 0),
    },
    "postgresql": {
        "open_per_s": (">=", 300.0),
        "open_p99_ms": ("<=", 100.0),
        "errors": ("<=", 0),
        "access_log_mismatch": ("<=", 0),
        "grants_recorded_twice": ("<=", 0),
    },
}
GRANTS_MINED_WITHIN_S = 60.0
SECONDS = 30.0
# the default with --faults: the schedule (6 calm periods and the faults; 7 and the broker fault on Redis)
FAULT_SECONDS = {False: 130.0, True: 155.0}
OUTBOX_SETTLED_WITHIN_S = 30.0


class Command(BaseCommand):
    help = "Load-test the API on the production shape (gunicorn, worker, relayer, indexer): req/s, p50, p99."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, default=16)
        parser.add_argument(
            "--seconds",
            type=float,
            default=None,
            help=f"measured, after the warm-up (default {SECONDS:g}; with --faults {FAULT_SECONDS[False]:g},"
            f" {FAULT_SECONDS[True]:g} on a Redis broker)",
        )
        parser.add_argument("--warmup", type=float, default=3.0)
        parser.add_argument("--records", type=int, default=5, help="records per demo patient")
        parser.add_argument("--workers", type=int, default=settings.WEB_CONCURRENCY)
        parser.add_argument("--threads", type=int, default=settings.WEB_THREADS)
        parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
        parser.add_argument("--keep", action="store_true", help="keep the state folder (and its logs)")
        parser.add_argument(
            "--faults",
            action="store_true",
            help="chain, worker, web, celery, chain_kill and broker faults under the load",
        )
        parser.add_argument(
            "--chain-kill",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="with --faults, also SIGKILL the chain node (it comes back rewound from its last state "
            "dump: a re-org); on by default",
        )
        parser.add_argument(
            "--fault-calm", type=float, default=15.0, help="seconds of calm before each fault"
        )
        parser.add_argument(
            "--fault-down", type=float, default=10.0, help="seconds the chain and the broker stay down"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        redis = is_redis(settings.CELERY_BROKER_URL)
        if options["seconds"] is None:
            options["seconds"] = FAULT_SECONDS[redis] if options["faults"] else SECONDS
        if options["faults"]:
            needed = FaultSchedule.length_s(
                calm_s=options["fault_calm"],
                down_s=options["fault_down"],
                broker=redis,
                chain_kill=options["chain_kill"],
            )
            if needed > options["seconds"]:
                raise CommandError(
                    f"--faults needs --seconds of at least {needed:g} with these calm/down times"
                )
        if os.environ.get(INSIDE) == "1":
            stop_signals()
            self._inside(options)
        else:
            with sigterm_unwinds():
                self._outside(options)

    # --- outside: a state of its own, then this command again inside it -----------------------------

    def _outside(self, options: dict[str, Any]) -> None:
        with own_state("hh-bench-api-", keep=options["keep"], say=self.stderr.write) as state:
            argv = [
                f"--clients={options['clients']}",
                f"--seconds={options['seconds']}",
                f"--warmup={options['warmup']}",
                f"--records={options['records']}",
                f"--workers={options['workers']}",
                f"--threads={options['threads']}",
                f"--worker-class={options['worker_class']}",
                f"--fault-calm={options['fault_calm']}",
                f"--fault-down={options['fault_down']}",
                *(["--faults"] if options["faults"] else []),
                "--chain-kill" if options["chain_kill"] else "--no-chain-kill",
            ]
            env = os.environ | {
                INSIDE: "1",
                "HEALTHHASH_VAR_DIR": str(state),
                "ETH_RPC_URL": "",
                "DEV_CHAIN_PORT": str(free_port()),
            }
            with _own_database(env), _own_broker(env, state, say=self.stderr.write):
                run_again_inside("bench_api", argv, env)

    # --- inside: serve, world, load, checks ---------------------------------------------------------

    def _inside(self, options: dict[str, Any]) -> None:
        say = self.stderr.write
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        schedule: FaultSchedule | None = None
        try:
            with _serving(options, port, say) as serve:
                say("setup: records and consents (mined by the serving relayer)")
                world = api_world.build_world(records_per_patient=options["records"], say=say)
                personas = _personas(world, options["clients"])
                started_at = api_world.now()
                if options["faults"]:
                    schedule = _fault_schedule(options, serve.pid, say)
                    schedule.start()
                load_begin = time.monotonic()
                stats, samples, window = run_load(
                    url, personas, seconds=options["seconds"], warmup_s=options["warmup"], say=say
                )
                load_end = time.monotonic()
                if schedule is not None:
                    schedule.join()
                grants, mined = _grants_mined(started_at)
                grants_twice = api_world.grants_recorded_twice(started_at)
                grants_off_chain = api_world.grants_off_chain(started_at)
                index_off_chain = api_world.index_off_chain()
                outbox_left = _outbox_settled()
                opens_logged = api_world.opens_logged_since(started_at)
                audit_ok, audit_entries = api_world.audit()
        finally:
            if schedule is not None:
                schedule.join()  # (at once when the load ended normally: it was joined above)
                schedule.stop_restarted_chain()  # the anvil the schedule started, after serve has stopped
        # (the redis-server a broker fault started again is stopped by the outside, which owns the first)
        opens_ok = sum(1 for s in samples if s.op == "open" and s.status == 200)
        # An open whose answer never came (its web worker killed mid-request) may or may not have logged
        # its entry: between `opens_ok` and `opens_ok + opens_unanswered` entries are each exactly once.
        opens_unanswered = sum(1 for s in samples if s.op == "open" and s.status == 0)
        figures: dict[str, Any] = {
            "database": connection.vendor,
            "broker": _broker_name(),
            "web": f"{options['workers']} {options['worker_class']}"
            + (f" x {options['threads']}" if options["worker_class"] == "gthread" else ""),
            "clients": options["clients"],
            "seconds": round(window, 1),
            "requests": sum(stat.count for stat in stats.values()),
            "errors": sum(stat.errors for stat in stats.values()),
            "error_statuses": _error_statuses(samples),
        }
        for op, stat in sorted(stats.items(), key=lambda item: (item[0] != "open", item[0])):
            figures[f"{op}_per_s"] = round(stat.count / window, 1)
            figures[f"{op}_p50_ms"] = stat.percentile(0.50)
            figures[f"{op}_p99_ms"] = stat.percentile(0.99)
            figures[f"{op}_errors"] = stat.errors
        figures |= {
            "open_ok_requests": opens_ok,
            "open_log_entries": opens_logged,
            "open_unanswered": opens_unanswered,
            "access_log_mismatch": max(0, opens_ok - opens_logged)
            + max(0, opens_logged - opens_ok - opens_unanswered),
            "grants_submitted": grants,
            "grants_mined": mined,
            "grants_recorded_twice": grants_twice,
            "grants_off_chain": grants_off_chain,
            "index_events_off_chain": index_off_chain,
            "outbox_unsettled": ",".join(f"{status}:{n}" for status, n in sorted(outbox_left.items())),
            "verify_audit_ok": audit_ok,
            "audit_entries_verified": audit_entries,
        }
        targets = dict(TARGETS.get(connection.vendor, {}))
        if schedule is not None:
            costs = fault_costs(schedule.faults, samples, load_end)
            self._fault_table(costs, schedule.failures, schedule.notes)
            figures |= _fault_figures(costs, schedule, samples, load_begin + options["warmup"])
            targets.pop("errors", None)  # errors during a fault are expected; the figures say which
            targets["errors_before_faults"] = ("<=", 0)
        report_figures(self.stdout.write, figures, targets)

    def _fault_table(self, costs: list[FaultCost], failures: list[str], notes: list[str]) -> None:
        write = self.stdout.write
        write(
            f"{'fault':10} {'down_s':>7} {'errors':>7} {'degraded_s':>11}  errors by operation; what was done"
        )
        for cost in costs:
            by_op = ",".join(f"{op}:{n}" for op, n in sorted(cost.errors_by_op.items())) or "-"
            write(
                f"{cost.fault.name:10} {cost.fault.down_s:7.1f} {cost.errors:7d} {cost.degraded_s:11.1f}"
                f"  {by_op}; {cost.fault.how}"
            )
        for failure in failures:
            write(f"not done: {failure}")
        for note in notes:
            write(note)


def _fault_schedule(options: dict[str, Any], serve_pid: int, say: Any) -> FaultSchedule:
    return FaultSchedule(
        serve_pid=serve_pid,
        chain_port=settings.DEV_CHAIN_PORT,
        chain_log=Path(settings.VAR_DIR) / "anvil-restarted.log",
        start_after_s=options["warmup"],
        calm_s=options["fault_calm"],
        down_s=options["fault_down"],
        grants_between=api_world.grants_between,
        grants_mined_above=api_world.grants_mined_above,
        grants_unmined=api_world.grants_unmined,
        index_off_chain=api_world.index_off_chain,
        now=api_world.now,
        settle_within_s=GRANTS_MINED_WITHIN_S,
        broker=settings.CELERY_BROKER_URL.split(":", 1)[0],
        own_redis=_inside_redis(),
        chain_kill=options["chain_kill"],
        say=say,
    )


def _inside_redis() -> OwnRedis | None:
    """The bench's own redis-server (the outside started it in the state folder), None on another broker."""
    port = os.environ.get(OWN_REDIS_PORT, "")
    if not port or not is_redis(settings.CELERY_BROKER_URL):
        return None
    return OwnRedis(port=int(port), folder=Path(settings.VAR_DIR) / "redis")


def _broker_name() -> str:
    redis = _inside_redis()
    if redis is not None:
        return f"redis (the bench's own, port {redis.port})"
    return settings.CELERY_BROKER_URL.split(":", 1)[0] + (
        " (embedded)" if settings.CELERY_BROKER_URL.startswith("sqla") else ""
    )


def _fault_figures(
    costs: list[FaultCost], schedule: FaultSchedule, samples: list[Sample], measured_from: float
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "faults_done": len(costs),
        "errors_before_faults": errors_before(schedule.faults, samples, measured_from),
    }
    for cost in costs:
        name = cost.fault.name
        figures[f"fault_{name}_down_s"] = round(cost.fault.down_s, 1)
        figures[f"fault_{name}_errors"] = cost.errors
        figures[f"fault_{name}_degraded_s"] = cost.degraded_s
        figures[f"fault_{name}_errors_by_op"] = ",".join(
            f"{op}:{n}" for op, n in sorted(cost.errors_by_op.items())
        )
        if name in ("chain", "chain_kill"):
            figures[f"fault_{name}_kept_state"] = cost.fault.kept_state
            figures[f"fault_{name}_kept_genesis"] = cost.fault.kept_genesis
        if name == "chain_kill":
            figures["fault_chain_kill_rewound_blocks"] = cost.fault.rewound_blocks
            figures["fault_chain_kill_grants_rewound"] = len(cost.fault.rewound)
            figures["fault_chain_kill_index_off_chain"] = cost.fault.index_off_chain
        if name in ("chain", "chain_kill", "broker"):
            figures[f"fault_{name}_grants_held"] = cost.fault.held
            figures[f"fault_{name}_unmined_grants"] = cost.fault.unsettled
        if name == "broker":
            answered = cost.fault.worker_answered
            # seconds from the broker's return to the Celery worker answering through it (None: never)
            figures["fault_broker_worker_back_s"] = (
                None if answered is None else round(answered - cost.fault.ended, 1)
            )
    figures["faults_not_applicable"] = "; ".join(schedule.notes)
    return figures


def _personas(world: api_world.World, clients: int) -> list[Persona]:
    doctors, patients, granters = split_clients(clients)
    return (
        [world.doctors[i % len(world.doctors)] for i in range(doctors)]
        + [world.patients[i % len(world.patients)] for i in range(patients)]
        + [world.granter] * granters
    )


def _error_statuses(samples: list[Sample]) -> str:
    """ "status:count,..." of the unexpected answers (0: no answer), all of the run; "" when there is none."""
    counts = Counter(s.status for s in samples if s.status not in EXPECTED.get(s.op, {200}))
    return ",".join(f"{status}:{n}" for status, n in sorted(counts.items()))


def _outbox_settled() -> dict[str, int]:
    """The outbox items not confirmed once those in flight had OUTBOX_SETTLED_WITHIN_S to settle (an audit
    anchor beat queued at the end of the load); a failed item is final."""
    deadline = time.monotonic() + OUTBOX_SETTLED_WITHIN_S
    while True:
        left = api_world.outbox_unsettled()
        if set(left) <= {"failed"} or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _grants_mined(started_at: Any) -> tuple[int, int]:
    deadline = time.monotonic() + GRANTS_MINED_WITHIN_S
    while True:
        grants, mined = api_world.grants_since(started_at)
        if mined == grants or time.monotonic() > deadline:
            return grants, mined
        time.sleep(0.5)


@contextmanager
def _own_database(env: dict[str, str]) -> Iterator[None]:
    """SQLite: the state folder's own file. PostgreSQL: a fresh database beside this one, dropped after."""
    if connection.vendor != "postgresql":
        env.pop("DATABASE_URL", None)
        yield
        return
    name = f"{connection.settings_dict['NAME']}_bench_api"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = current_database_url().rsplit("/", 1)[0] + f"/{name}"
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _own_broker(env: dict[str, str], state: Path, *, say: Any) -> Iterator[None]:
    """On a Redis broker: a redis-server of the bench's own, and the caller's Redis URLs (broker, cache,
    result backend) pointed at it, a database each. Any other broker: nothing (the embedded one is a file
    in the state folder already)."""
    if not is_redis(settings.CELERY_BROKER_URL):
        yield
        return
    with own_redis(state, port=free_port(), say=say) as server:
        env[OWN_REDIS_PORT] = str(server.port)
        for name, db in REDIS_URLS.items():
            if name == "CELERY_BROKER_URL" or is_redis(env.get(name, "")):
                env[name] = f"{server.url}/{db}"
        yield


@contextmanager
def _serving(options: dict[str, Any], port: int, say: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py serve` on `port` (its output in the state folder) until the block ends; SIGINT stops it."""
    folder = Path(settings.VAR_DIR)
    argv = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "serve",
        f"--addr=127.0.0.1:{port}",
        f"--workers={options['workers']}",
        f"--threads={options['threads']}",
        f"--worker-class={options['worker_class']}",
    ]
    with (folder / "serve.out").open("wb") as out, (folder / "serve.err").open("wb") as err:
        serve = subprocess.Popen(argv, stdout=out, stderr=err)  # noqa: S603 - fixed argv, no shell
    try:
        say(f"serve: starting on port {port} (chain, demo consortium, processes)")
        deadline = time.monotonic() + 600
        while not _healthy(f"http://127.0.0.1:{port}"):
            if serve.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "serve.err").read_text(errors="replace")[-2000:]
                raise CommandError(f"serve did not become healthy:\n{tail}")
            time.sleep(1)
        yield serve
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=90)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def _healthy(url: str) -> bool:
    answer = processes.health(url, timeout_s=5)
    return answer is not None and answer[0] == 200
