"""Faults under load for `manage.py bench_api --faults`: while the clients run, a schedule in a thread of its
own stops the dev chain and brings it back with its state, kills the Celery worker's pool process, kills
one gunicorn worker, kills the dev chain (SIGKILL: it comes back from an older state, rewound), on a
Redis broker kills the broker and starts it again, and kills the Celery worker's main process, a calm
period before each. Each fault is a `Fault` with monotonic times, the clock the load's samples use, so
that the errors a fault cost can be told from the samples afterwards.

The processes are found in /proc under the `manage.py serve` process the benchmark started (Linux only):
- chain: the anvil child of `serve` listening on DEV_CHAIN_PORT, stopped with SIGTERM (anvil dumps its
  `--state` file on the way out) and started again here with the same command line, so the chain keeps its
  blocks; this replacement is a child of the benchmark, which stops it after `serve` has stopped;
- worker: a SIGKILL to the worker's pool process, which the Celery main process replaces;
- web: a SIGKILL to one worker of the gunicorn master, which forks a new one;
- celery: a SIGKILL to the Celery worker's main process; `serve` stops what its group left (the pool
  process, beat) and starts a new worker (demo/processes.py). Over when the new worker has its pool;
- chain_kill: a SIGKILL to anvil, which dumps its `--state` only every 5 s (contracts/node.py): started
  again from that dump, the chain has lost its last blocks, and the blocks mined next at those heights
  have other hashes, a re-org. The grants mined in the lost blocks are counted (`rewound`); the fault is
  settled when those and the grants submitted while it was down are mined again and the index holds no
  block the chain no longer has (the relayer re-sends what the rewind dropped; the indexer's re-org
  check rewinds its rows);
- broker: on a Redis broker, the redis-server of the bench's own (bench/own_state.py; a shared Redis is
  never touched) is SIGKILLed and, after the down time, started again on the same port, empty: it keeps
  nothing on disk, so the messages it held are lost. What goes through it under this load: the relayer
  kicks each accepted grant sends after its commit (contracts/outbox.py; a failed kick is logged and
  swallowed, and `serve`'s relayer process drains the outbox without them) and beat's periodic tasks
  (audit-head and record anchoring, the training sweep), which beat sends again at their next turn. The
  fault is over when the Celery worker answers a ping through the new server and the grants accepted
  meanwhile are mined. The embedded broker (a SQLite file) has no process to restart: the table says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.api_load import EXPECTED, Sample
from bench.own_state import OwnRedis
from contracts.client import ChainRpcError, latest_block, rpc
from contracts.node import prepare_state_file, wait_for_rpc
from healthhash.errors import Unavailable

Say = Callable[[str], None]
# The Celery worker's restart (a new interpreter, Django, the pool) is the slowest: last, so that it holds
# no other fault back; a load that ends first waits for it (its figures then cover the load it saw).
FAULT_NAMES = ("chain", "worker", "web", "chain_kill", "broker", "celery")
RESPAWN_WITHIN_S = 30.0
CELERY_BACK_WITHIN_S = 90.0  # serve notices within a second; the new worker imports Django, forks its pool
# chain_kill: grants mined in the last this many blocks are looked at (anvil's dump is at most 5 s old)
REWIND_SEEN_BLOCKS = 200
DUMP_INTERVAL_S = 5.0  # anvil's --state-interval (contracts/node.py)
DUMP_AGE_AT_KILL_S = (3.5, 4.5)  # chain_kill: killed this long after the last dump, before the next
DUMP_CYCLES_AT_MOST = 4  # chain_kill: dump intervals it waits for one in which blocks were mined


@dataclass
class Fault:
    """One fault: `started` when it was done, `ended` when the process or node was back (monotonic);
    `settled` when the writes it held back were done (the chain, the broker: grants submitted while it was
    down mined; the broker: the Celery worker consuming again too), None when there were none to wait for
    or they were not done in time."""

    name: str
    how: str
    started: float
    ended: float
    settled: float | None = None
    held: int = 0  # writes accepted while it lasted that waited on it (the chain: grants submitted)
    unsettled: int = 0  # of those (chain_kill: and of the grants it rewound), not mined when the watch ended
    kept_state: bool | None = None  # the chain: its head after the restart at least the head before
    kept_genesis: bool | None = None  # the chain: the same genesis block after the restart
    rewound_blocks: int = 0  # chain_kill: blocks the restarted chain had lost (head before - head after)
    rewound: list[Any] = field(default_factory=list)  # chain_kill: ids of grants mined in the lost blocks
    index_off_chain: int | None = None  # chain_kill: indexed events in blocks no longer on the chain (-1: ?)
    worker_answered: float | None = None  # the broker: when the Celery worker answered a ping through it

    @property
    def down_s(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    argv: tuple[str, ...]


def _processes() -> list[Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = tuple((entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1])
        except (OSError, IndexError):
            continue
        found.append(Proc(int(entry.name), int(stat[1]), stat[0], argv))
    return found


def _children(pid: int) -> list[Proc]:
    return [p for p in _processes() if p.ppid == pid and p.state != "Z"]


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, not a zombie its parent has yet to reap)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except (OSError, IndexError):
        return False


def _pipe_fds(pid: int) -> int:
    """How many pipes `pid` holds beyond stdin/out/err (a Celery pool process talks to its parent by pipes;
    embedded beat closes every descriptor it inherited)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd") if int(fd) > 2]
    except OSError:
        return 0
    return sum(1 for link in links if link.startswith("pipe:"))


def _one(found: list[Proc], what: str) -> Proc:
    if len(found) != 1:
        raise RuntimeError(f"expected one {what}, found {len(found)}: {[p.pid for p in found]}")
    return found[0]


def _wait(condition: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class FaultSchedule:
    """The faults, in a thread, against the processes of one `serve`; `restarted_chain` is the anvil this
    schedule started, which `stop_restarted_chain()` ends (after `serve` has ended). `own_redis`: the
    bench's own Redis broker, None on the embedded broker (no broker fault: `notes` says why); a
    redis-server the schedule starts again is stopped by whoever started the first (`own_redis`)."""

    def __init__(
        self,
        *,
        serve_pid: int,
        chain_port: int,
        chain_log: Path,
        start_after_s: float,
        calm_s: float,
        down_s: float,
        grants_between: Callable[[Any, Any], tuple[int, int]],
        grants_mined_above: Callable[[int], dict[Any, int]],
        grants_unmined: Callable[[list[Any]], int],
        index_off_chain: Callable[[], int],
        now: Callable[[], Any],
        settle_within_s: float,
        broker: str,
        own_redis: OwnRedis | None,
        say: Say,
        chain_kill: bool = False,
    ) -> None:
        self.serve_pid = serve_pid
        self.chain_port = chain_port
        self.chain_log = chain_log
        self.start_after_s = start_after_s
        self.calm_s = calm_s
        self.down_s = down_s
        self.grants_between = grants_between
        self.grants_mined_above = grants_mined_above
        self.grants_unmined = grants_unmined
        self.index_off_chain = index_off_chain
        self.now = now
        self.settle_within_s = settle_within_s
        self.broker = broker
        self.own_redis = own_redis
        self.chain_kill = chain_kill
        self.say = say
        self.faults: list[Fault] = []
        self.failures: list[str] = []
        self.notes: list[str] = []  # faults that do not apply to this shape, and why
        self.restarted_chain: subprocess.Popen[bytes] | None = None
        self.restarted_broker: subprocess.Popen[bytes] | None = None  # stopped by own_redis's owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._watchers: list[threading.Thread] = []

    @staticmethod
    def length_s(*, calm_s: float, down_s: float, broker: bool, chain_kill: bool = False) -> float:
        """Seconds the schedule needs from its start (a calm period after the last fault too); `broker`:
        with the broker fault (a Redis broker); `chain_kill`: with the chain's SIGKILL."""
        faults = len(FAULT_NAMES) - (0 if broker else 1) - (0 if chain_kill else 1)
        down = 1 + (1 if broker else 0) + (1 if chain_kill else 0)
        return (faults + 1) * calm_s + down * down_s + 3.0

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        """Stops what is left of the schedule (the chain is brought back if it is down) and waits for it."""
        self._stop.set()
        self._thread.join()
        for watcher in self._watchers:
            watcher.join()

    def _run(self) -> None:
        steps = {
            "chain": self._chain,
            "worker": self._worker,
            "web": self._web,
            "celery": self._celery,
            "chain_kill": self._chain_kill,
            "broker": self._broker,
        }
        names = list(FAULT_NAMES)
        if not self.chain_kill:
            names.remove("chain_kill")
            self.notes.append("chain_kill: not done (--no-chain-kill)")
        if self.own_redis is None:
            names.remove("broker")
            self.notes.append(
                "broker: not done: the embedded broker (a SQLite file) has no process to restart"
                if self.broker.startswith("sqla")
                else f"broker: not done: only a Redis broker of the bench's own is restarted ({self.broker})"
            )
        try:
            if self._stop.wait(self.start_after_s):
                return
            for name in names:
                if self._stop.wait(self.calm_s):
                    return
                try:
                    self.faults.append(steps[name]())
                except Exception as exc:  # a fault that could not be done is a figure, not a crash
                    self.failures.append(f"{name}: {exc}")
                    self.say(f"fault {name}: could not be done: {exc}")
        finally:
            from django.db import connection

            connection.close()

    # --- the chain: stopped (SIGTERM: anvil dumps its state), down, started again with that state -------

    def _chain(self) -> Fault:
        head_before, genesis_before = latest_block(), _genesis_hash()
        wall_start = self.now()
        fault = self._restart_chain(
            self._anvil(),
            signal.SIGTERM,
            "chain",
            "anvil stopped (SIGTERM, state dumped) and started again with its --state",
        )
        head_after = latest_block()
        fault.kept_state = head_after >= head_before
        fault.kept_genesis = _genesis_hash() == genesis_before
        self.say(
            f"fault chain: anvil back after {fault.down_s:.1f} s, head {head_after}"
            f" (block {head_before} before the stop)"
        )
        self._watch(fault, wall_start)
        return fault

    def _chain_kill(self) -> Fault:
        anvil = self._anvil()
        _wait_for_blocks_after_dump(anvil, DUMP_AGE_AT_KILL_S, DUMP_CYCLES_AT_MOST)
        head_before, genesis_before = latest_block(), _genesis_hash()
        mined_before = self.grants_mined_above(head_before - REWIND_SEEN_BLOCKS)
        wall_start = self.now()
        fault = self._restart_chain(
            anvil,
            signal.SIGKILL,
            "chain_kill",
            "anvil SIGKILLed and started again from its last periodic --state dump (rewound)",
        )
        head_after = latest_block()
        fault.kept_state = head_after >= head_before
        fault.kept_genesis = _genesis_hash() == genesis_before
        fault.rewound_blocks = max(0, head_before - head_after)
        # (from before the kill: the indexer may already have reset the grants it finds orphaned)
        fault.rewound = [grant for grant, block in mined_before.items() if block > head_after]
        self.say(
            f"fault chain_kill: anvil back after {fault.down_s:.1f} s, head {head_after} (block"
            f" {head_before} before the kill): {fault.rewound_blocks} blocks lost,"
            f" {len(fault.rewound)} grants mined in them"
        )
        self._watch(fault, wall_start)
        return fault

    def _anvil(self) -> Proc:
        port = f"{self.chain_port}"
        return _one(
            [p for p in _processes() if p.state != "Z" and "anvil" in " ".join(p.argv) and port in p.argv],
            f"anvil on port {port}",
        )

    def _restart_chain(self, anvil: Proc, signum: signal.Signals, name: str, how: str) -> Fault:
        """Ends the dev chain's `anvil` with `signum`, waits out the down time, starts it again with the
        same command line (its --state file), and returns the fault once it answers."""
        port = f"{self.chain_port}"
        previous = self.restarted_chain
        started = time.monotonic()
        self.say(f"fault {name}: {signum.name} to anvil (pid {anvil.pid}), down {self.down_s:g} s")
        os.kill(anvil.pid, signum)
        if not _wait(lambda: not _running(anvil.pid), 10.0):
            os.kill(anvil.pid, signal.SIGKILL)
            _wait(lambda: not _running(anvil.pid), 5.0)
        if previous is not None:
            previous.wait()  # the one an earlier fault started: reaped
        self._stop.wait(max(0.0, started + self.down_s - time.monotonic()))  # cut short: back at once
        argv = list(anvil.argv)
        if "--state" in argv:  # as start_anvil does before a start from the state file
            prepare_state_file(Path(argv[argv.index("--state") + 1]))
        with self.chain_log.open("ab") as log:
            self.restarted_chain = subprocess.Popen(  # noqa: S603 - the argv it ran with, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_rpc(f"http://127.0.0.1:{port}", timeout=30.0)
        return Fault(name, how, started, time.monotonic())

    def _watch(self, fault: Fault, wall_start: Any) -> None:
        watcher = threading.Thread(target=self._watch_grants, args=(fault, wall_start, self.now()))
        self._watchers.append(watcher)
        watcher.start()

    def _watch_grants(self, fault: Fault, wall_start: Any, wall_back: Any) -> None:
        """Waits until the grants submitted while the node or broker was down are mined (after chain_kill,
        the grants the rewind lost too, and the index on the new branch) and, after the broker, until the
        Celery worker answers through it: `fault.settled`."""
        from django.db import connection

        deadline = fault.ended + self.settle_within_s
        mined_at: float | None = None
        try:
            while True:
                if fault.name == "broker" and fault.worker_answered is None and _worker_answers():
                    fault.worker_answered = time.monotonic()
                if mined_at is None:
                    submitted, mined = self.grants_between(wall_start, wall_back)
                    fault.held, fault.unsettled = submitted, submitted - mined
                    off_branch = 0
                    if fault.name == "chain_kill":
                        # mined again on the new branch, as the index (no longer on the lost one) says
                        fault.unsettled += self.grants_unmined(fault.rewound)
                        off_branch = fault.index_off_chain = self._index_off_chain()
                    if fault.unsettled == 0 and off_branch == 0:
                        mined_at = time.monotonic() if submitted or fault.rewound else fault.ended
                back = fault.worker_answered if fault.name == "broker" else fault.ended
                if mined_at is not None and back is not None:
                    if fault.held or fault.rewound or fault.name == "broker":
                        fault.settled = max(mined_at, back)
                    return
                if time.monotonic() > deadline:
                    return
                time.sleep(0.25)
        finally:
            connection.close()

    def _index_off_chain(self) -> int:
        """`index_off_chain()`, or -1 while the node does not answer it."""
        try:
            return self.index_off_chain()
        except (Unavailable, ChainRpcError):
            return -1

    def stop_restarted_chain(self) -> None:
        chain = self.restarted_chain
        if chain is None or chain.poll() is not None:
            return
        os.killpg(chain.pid, signal.SIGTERM)
        try:
            chain.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(chain.pid, signal.SIGKILL)
            chain.wait()

    # --- the Celery worker: its pool process killed, the main process forks another ----------------------

    def _worker(self) -> Fault:
        main = self._celery_main()
        pool = max(_children(main.pid), key=lambda p: _pipe_fds(p.pid), default=None)
        if pool is None or _pipe_fds(pool.pid) == 0:
            raise RuntimeError(f"no pool process under the Celery worker (pid {main.pid})")
        started = time.monotonic()
        self.say(f"fault worker: SIGKILL to the Celery pool process (pid {pool.pid}, worker {main.pid})")
        os.kill(pool.pid, signal.SIGKILL)
        if not _wait(
            lambda: any(p.pid != pool.pid and _pipe_fds(p.pid) for p in _children(main.pid)),
            RESPAWN_WITHIN_S,
        ):
            raise RuntimeError(
                f"the Celery worker did not replace its pool process in {RESPAWN_WITHIN_S:g} s"
            )
        how = "Celery pool process SIGKILLed, replaced by the worker"
        fault = Fault("worker", how, started, time.monotonic())
        self.say(f"fault worker: a new pool process after {fault.down_s:.1f} s")
        return fault

    # --- the web: one gunicorn worker killed, the master forks another -----------------------------------

    def _web(self) -> Fault:
        master = _one(
            [p for p in _children(self.serve_pid) if "gunicorn" in " ".join(p.argv)],
            "gunicorn master under serve",
        )
        workers = _children(master.pid)
        if not workers:
            raise RuntimeError(f"no worker under the gunicorn master (pid {master.pid})")
        victim = workers[0]
        started = time.monotonic()
        self.say(f"fault web: SIGKILL to gunicorn worker pid {victim.pid} (master {master.pid})")
        os.kill(victim.pid, signal.SIGKILL)
        if not _wait(
            lambda: len([p for p in _children(master.pid) if p.pid != victim.pid]) >= len(workers),
            RESPAWN_WITHIN_S,
        ):
            raise RuntimeError(f"the gunicorn master did not fork a new worker in {RESPAWN_WITHIN_S:g} s")
        fault = Fault(
            "web", "one gunicorn worker SIGKILLed, forked again by the master", started, time.monotonic()
        )
        self.say(f"fault web: a new worker after {fault.down_s:.1f} s")
        return fault

    # --- the Celery worker's main process killed: serve stops its group and starts a new worker ----------

    def _celery(self) -> Fault:
        main = self._celery_main()
        started = time.monotonic()
        self.say(f"fault celery: SIGKILL to the Celery worker's main process (pid {main.pid})")
        os.kill(main.pid, signal.SIGKILL)

        def new_worker_with_pool() -> bool:
            found = [
                p for p in _children(self.serve_pid) if p.pid != main.pid and "celery" in " ".join(p.argv)
            ]
            return any(_pipe_fds(child.pid) for p in found for child in _children(p.pid))

        if not _wait(new_worker_with_pool, CELERY_BACK_WITHIN_S):
            raise RuntimeError(f"serve did not start a new Celery worker in {CELERY_BACK_WITHIN_S:g} s")
        fault = Fault(
            "celery",
            "Celery worker's main process SIGKILLed; serve stopped its pool and beat, started a new worker",
            started,
            time.monotonic(),
        )
        self.say(f"fault celery: a new worker with its pool process after {fault.down_s:.1f} s")
        return fault

    def _celery_main(self) -> Proc:
        return _one(
            [p for p in _children(self.serve_pid) if "celery" in " ".join(p.argv) and "worker" in p.argv],
            "Celery worker under serve",
        )

    # --- the broker: the bench's own redis-server killed, started again empty on the same port ----------

    def _broker(self) -> Fault:
        redis = self.own_redis
        if redis is None:
            raise RuntimeError("no redis-server of the bench's own to restart")
        pid = redis.pid()
        if pid is None:
            raise RuntimeError(f"the bench's own redis-server (port {redis.port}) is not running")
        wall_start = self.now()
        started = time.monotonic()
        self.say(f"fault broker: SIGKILL to the bench's redis-server (pid {pid}), down {self.down_s:g} s")
        os.kill(pid, signal.SIGKILL)
        if not _wait(lambda: not _running(pid) and not redis.answers(0.2), 10.0):
            raise RuntimeError(f"the redis-server (pid {pid}) did not end after SIGKILL")
        self._stop.wait(max(0.0, started + self.down_s - time.monotonic()))  # cut short: back at once
        restarted = self.restarted_broker = redis.start()
        fault = Fault(
            "broker",
            "the bench's redis-server SIGKILLed (nothing persisted: its messages lost), started again empty",
            started,
            time.monotonic(),
        )
        self.say(f"fault broker: redis-server back after {fault.down_s:.1f} s (pid {restarted.pid})")
        self._watch(fault, wall_start)
        return fault


def _wait_for_blocks_after_dump(anvil: Proc, age_s: tuple[float, float], cycles: int) -> None:
    """Waits until anvil's --state file was last written between `age_s` seconds ago and a block has been
    mined since (a few dump intervals at most): killed then, the chain loses those blocks, and not in
    the middle of a dump."""
    argv = list(anvil.argv)
    if "--state" not in argv:
        return
    state = Path(argv[argv.index("--state") + 1])

    def written() -> float:
        try:
            return state.stat().st_mtime
        except OSError:
            return 0.0

    for _ in range(cycles):
        if not _wait(partial(_rewritten, state, written()), DUMP_INTERVAL_S + 1.0):
            return  # no dump seen: kill when asked
        head_at_dump = latest_block()  # read just after the dump: at least the head it holds
        if _wait(lambda: age_s[0] <= time.time() - written() <= age_s[1], DUMP_INTERVAL_S + 1.0):
            if latest_block() > head_at_dump:
                return


def _genesis_hash() -> str:
    return str(rpc("eth_getBlockByNumber", ["0x0", False])["hash"])


def _rewritten(path: Path, mtime: float) -> bool:
    try:
        return path.stat().st_mtime != mtime
    except OSError:
        return False


def _worker_answers() -> bool:
    """Whether a Celery worker answers a ping through the broker (within a second)."""
    from healthhash.celery import app

    try:
        return bool(app.control.ping(timeout=1.0, limit=1))
    except Exception:  # the broker's connection not back yet: not answering
        return False


@dataclass
class FaultCost:
    """What a fault cost the clients: errors by operation answered from its start to the next fault's start
    (or the end of the load; a request in flight when a process was killed fails after the kill),
    and the seconds of degraded service (fault start to the last failed answer, or to the writes it held
    back being done, whichever is later; 0 when no client saw it)."""

    fault: Fault
    errors_by_op: dict[str, int] = field(default_factory=dict)
    degraded_s: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.errors_by_op.values())


def _failed(sample: Sample) -> bool:
    return sample.status not in EXPECTED.get(sample.op, {200})


def fault_costs(faults: list[Fault], samples: list[Sample], load_end: float) -> list[FaultCost]:
    costs = []
    for index, fault in enumerate(faults):
        until = faults[index + 1].started if index + 1 < len(faults) else load_end
        cost = FaultCost(fault)
        last = fault.started
        for sample in samples:
            answered = sample.started + sample.seconds
            if fault.started <= answered < until and _failed(sample):
                cost.errors_by_op[sample.op] = cost.errors_by_op.get(sample.op, 0) + 1
                last = max(last, answered)
        if fault.settled is not None:
            last = max(last, fault.settled)
        cost.degraded_s = round(last - fault.started, 1)
        costs.append(cost)
    return costs


def errors_before(faults: list[Fault], samples: list[Sample], measured_from: float) -> int:
    """Failed answers in the measured window before the first fault (there should be none)."""
    first = faults[0].started if faults else float("inf")
    return sum(
        1 for s in samples if measured_from <= s.started and s.started + s.seconds < first and _failed(s)
    )
