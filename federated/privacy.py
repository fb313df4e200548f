"""Differential privacy at the hospital worker: a job's DP settings, the ε a round will spend, and the
hospital's privacy ledger (pure Python + Opacus' RDP analysis, no Django).

Accounting. A DP round is DP-SGD with Poisson sampling: `steps` noisy steps at sampling rate `q` with
noise multiplier sigma, a sampled Gaussian mechanism whose Rényi-DP curve Opacus' RDP analysis gives. The
round's own ε (reported per round and hospital) converts that curve at the job's δ.

Composition across rounds and jobs. The ledger keeps every round's mechanism (sigma, q, steps), not just its
ε, and states the hospital's total as ONE conversion of the summed RDP curves at the hospital's δ. RDP
composes additively under adaptive composition, so this is exact accounting for any sequence of DP-SGD
rounds on the same data (across jobs too), and much tighter than basic composition (Σε, Σδ), which the
ledger also reports (`epsilon_sum`) for comparison. It is conservative per patient: every round counts
against the hospital's data, also rounds a patient was not part of.

Worker protocol (what keeps the budget): `reserve` the planned round BEFORE training (refused with a
reason if the composed total would exceed the budget), `commit` what the round actually spent BEFORE its
weights leave the worker, `release` if training failed and nothing left. A reserved round counts as
spent, so two concurrent tasks cannot both slip under the budget, and a crashed task's reservation stays
counted until its retry (same key) takes it over. A round re-run after its commit is charged again: its
second output is a second release.

The ledger is a small JSON file per hospital, written atomically under an advisory lock. A file that
cannot be read is an error, never a fresh ledger: resetting it would reset the budget.
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from federated.networks import InvalidPlan

LEDGER_FORMAT = 1


@dataclass(frozen=True)
class DPConfig:
    """A job's DP-SGD settings: `{"noise_multiplier": > 0, "max_grad_norm": > 0, "delta": in (0, 1)}`."""

    noise_multiplier: float
    max_grad_norm: float
    delta: float

    @classmethod
    def from_json(cls, dp: Mapping[str, Any]) -> DPConfig:
        if not isinstance(dp, Mapping):
            raise InvalidPlan("dp must be an object.", field="dp")
        unknown = sorted(set(dp) - {"noise_multiplier", "max_grad_norm", "delta"})
        if unknown:
            raise InvalidPlan(f"dp has no setting {unknown[0]!r}.", field=f"dp.{unknown[0]}")
        return cls(
            noise_multiplier=_positive(dp.get("noise_multiplier"), name="noise_multiplier"),
            max_grad_norm=_positive(dp.get("max_grad_norm"), name="max_grad_norm"),
            delta=_positive(dp.get("delta"), name="delta", below_one=True),
        )


def _positive(value: Any, *, name: str, below_one: bool = False) -> float:
    valid = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    valid = valid and value > 0 and (value < 1 or not below_one)
    if not valid:
        bound = "in (0, 1)" if below_one else "a finite number > 0"
        raise InvalidPlan(f"{name} must be {bound}; got {value!r}.", field=f"dp.{name}")
    return float(value)


@dataclass(frozen=True)
class DPRound:
    """One round's DP-SGD mechanism and its ε at `delta` (for this round alone)."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    epsilon: float


def batches_per_epoch(*, sample_count: int, batch_size: int) -> int:
    """Opacus' DPDataLoader draws this many Poisson batches per epoch, each row with rate 1/this."""
    return math.ceil(sample_count / batch_size)


def plan_dp_round(*, sample_count: int, batch_size: int, epochs: int, dp: DPConfig) -> DPRound:
    """The mechanism `train_locally` will run for these settings, and its ε: known before training."""
    batches = batches_per_epoch(sample_count=sample_count, batch_size=batch_size)
    sample_rate, steps = 1 / batches, epochs * batches
    mechanism = (dp.noise_multiplier, sample_rate, steps)
    return DPRound(
        noise_multiplier=dp.noise_multiplier,
        sample_rate=sample_rate,
        steps=steps,
        delta=dp.delta,
        epsilon=composed_epsilon([mechanism], delta=dp.delta),
    )


def composed_epsilon(mechanisms: Iterable[tuple[float, float, int]], *, delta: float) -> float:
    """ε at `delta` of the sampled Gaussian mechanisms (sigma, q, steps) composed: RDP curves summed, then one
    conversion (Opacus' RDP analysis at its accountant's orders, as `RDPAccountant` does)."""
    # Opacus takes ~1.7 s to import; a worker that runs no DP job never pays it.
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import get_privacy_spent

    orders = RDPAccountant.DEFAULT_ALPHAS
    total = np.zeros(len(orders))
    for sigma, q, steps in mechanisms:
        total += steps * np.asarray(_rdp_of_one_step(sigma, q))  # RDP of k steps is k times one step's
    if not total.any():
        return 0.0
    epsilon, _ = get_privacy_spent(orders=orders, rdp=total, delta=delta)
    return float(epsilon)


@functools.lru_cache(maxsize=256)
def _rdp_of_one_step(sigma: float, q: float) -> tuple[float, ...]:
    """One step's RDP curve (~60 ms to compute; a ledger's rounds share few distinct (sigma, q))."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    return tuple(compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS))


class PrivacyRefused(ValueError):
    """The hospital's ledger refuses a round. `reason` is a stable code, `detail` says why for people."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


@dataclass(frozen=True)
class LedgerTotals:
    """The hospital's privacy spent so far: ε composed by RDP at `delta`, and basic composition's sums."""

    epsilon: float
    delta: float
    epsilon_budget: float
    epsilon_sum: float  # Σ per-round ε (basic composition; looser, for comparison)
    delta_sum: float  # Σ per-round δ (what basic composition would promise for δ)
    rounds: int

    @property
    def epsilon_left(self) -> float:
        return max(self.epsilon_budget - self.epsilon, 0.0)


class PrivacyLedger:
    """One hospital's (ε, δ) ledger across jobs and rounds, in the JSON file at `path`.

    The budget (ε_max at δ) is the hospital's configuration, passed in by its worker; the file keeps the
    rounds. See the module docstring for the reserve / commit / release protocol.
    """

    def __init__(self, *, path: Path | str, hospital: str, epsilon_budget: float, delta: float) -> None:
        if not (math.isfinite(epsilon_budget) and epsilon_budget > 0) or not 0 < delta < 1:
            raise ValueError("A privacy budget needs ε_max > 0 and 0 < δ < 1.")
        self.path = Path(path)
        self.hospital = hospital
        self.epsilon_budget = float(epsilon_budget)
        self.delta = float(delta)

    def totals(self) -> LedgerTotals:
        with self._locked():
            return self._totals(self._read())

    def reserve(self, *, key: str, planned: DPRound) -> LedgerTotals:
        """Count `planned` against the budget before training, or raise PrivacyRefused. `key` names the
        round (e.g. `job-7/round-3`); an uncommitted reservation with the same key (a crashed attempt
        whose weights never left) is replaced, not added to. Returns the totals including this round."""
        with self._locked():
            entries = [e for e in self._read() if not (e["key"] == key and e["state"] == "reserved")]
            entry = _entry(key=key, dp_round=planned, state="reserved")
            totals = self._totals([*entries, entry])
            if totals.epsilon > self.epsilon_budget:
                spent = self._totals(entries)
                raise PrivacyRefused(
                    f"Round {key!r} would spend ε={planned.epsilon:.3g} on its own (δ={planned.delta:g}); "
                    f"hospital {self.hospital!r} has spent ε={spent.epsilon:.3g} of its budget "
                    f"ε={self.epsilon_budget:g} at δ={self.delta:g}, and with this round would reach "
                    f"ε={totals.epsilon:.3g}.",
                    reason="privacy_budget_exceeded",
                )
            self._write([*entries, entry])
            return totals

    def commit(self, *, key: str, spent: DPRound) -> LedgerTotals:
        """Record what the reserved round `key` actually spent (call before its weights leave)."""
        with self._locked():
            entries = self._read()
            index = _reserved_index(entries, key)
            entries[index] = _entry(key=key, dp_round=spent, state="spent")
            self._write(entries)
            return self._totals(entries)

    def release(self, *, key: str) -> None:
        """Drop the reservation `key`: its training failed and nothing derived from it left the worker."""
        with self._locked():
            entries = self._read()
            del entries[_reserved_index(entries, key)]
            self._write(entries)

    def _totals(self, entries: list[dict[str, Any]]) -> LedgerTotals:
        mechanisms = [(e["noise_multiplier"], e["sample_rate"], e["steps"]) for e in entries]
        return LedgerTotals(
            epsilon=composed_epsilon(mechanisms, delta=self.delta),
            delta=self.delta,
            epsilon_budget=self.epsilon_budget,
            epsilon_sum=sum(e["epsilon"] for e in entries),
            delta_sum=sum(e["delta"] for e in entries),
            rounds=len(entries),
        )

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            document = json.loads(self.path.read_text())
            entries = document["rounds"]
            hospital = document["hospital"]
        except (ValueError, KeyError, TypeError) as error:
            raise PrivacyRefused(
                f"The privacy ledger {self.path} cannot be read ({error}); "
                "refusing rather than starting afresh.",
                reason="privacy_ledger_unreadable",
            ) from error
        if hospital != self.hospital:
            raise PrivacyRefused(
                f"The privacy ledger {self.path} belongs to hospital {hospital!r}, not {self.hospital!r}.",
                reason="privacy_ledger_mismatch",
            )
        return list(entries)

    def _write(self, entries: list[dict[str, Any]]) -> None:
        document = {
            "format": LEDGER_FORMAT,
            "hospital": self.hospital,
            "epsilon_budget": self.epsilon_budget,
            "delta": self.delta,
            "composition": "rdp",
            "rounds": entries,
        }
        # Write a sibling and rename it over the ledger: a crash leaves the old file or the new, never half.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(document, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive advisory lock on a sidecar file: read-check-write is one step across processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _entry(*, key: str, dp_round: DPRound, state: str) -> dict[str, Any]:
    return {"key": key, "state": state, **asdict(dp_round), "recorded_at": datetime.now(UTC).isoformat()}


def _reserved_index(entries: list[dict[str, Any]], key: str) -> int:
    for index, entry in enumerate(entries):
        if entry["key"] == key and entry["state"] == "reserved":
            return index
    raise PrivacyRefused(f"No reserved round {key!r} in this ledger.", reason="privacy_round_not_reserved")
