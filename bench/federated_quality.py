"""`fedavg_f1` against `central_f1`: does federated averaging over label-skewed hospitals learn what
central training on the union of the same rows learns?

The setting of issue 14: 5 hospitals, each class's training rows shared among them in Dirichlet(0.5)
proportions (label skew), the job's model (logistic regression), 1 local epoch per round, batch 32,
learning rate 0.5, FedAvg weighted by sample count, standardisation from pooled moments (as round 0 of a
real job does). Central training runs the same model from the same start for as many epochs as the
federation has rounds, on the union of the hospitals' rows. Both are scored by F1 on the held-out test set
(federated.testset: rows of the public table that are no patient's chart).

One split of 455 training and 114 test rows is noisy (one misclassified test row moves F1 by about a
point), so every figure is the mean over `seeds` partitions and initialisations; `rounds_to_within_1pt`
is the first round from which the mean FedAvg F1 stays within one point (0.01) of the mean central F1.
Runs in process: the protocol's cost is `round_overhead_ms`, measured separately on the real stack.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from federated.local_training import round_seed, train_locally
from federated.metrics import evaluate
from federated.networks import FeatureMoments, initial_weights, load_model
from federated.strategies import FedAvg
from federated.testset import held_out, training_split
from federated.updates import ModelUpdate

MODEL = {"name": "logistic"}
SETTINGS: dict[str, Any] = {"batch_size": 32, "lr": 0.5}


@dataclass(frozen=True)
class QualityRun:
    seeds: int
    rounds: int
    central_f1: float  # mean over seeds
    fedavg_f1: float  # mean over seeds, after the last round
    fedavg_f1_per_round: tuple[float, ...]  # mean over seeds, per round
    rounds_to_within_1pt: int | None  # None: never within a point for good

    def figures(self) -> dict[str, Any]:
        return {
            "central_f1": round(self.central_f1, 4),
            "fedavg_f1": round(self.fedavg_f1, 4),
            "f1_gap_pt": round(100 * (self.central_f1 - self.fedavg_f1), 2),
            "rounds_to_within_1pt": self.rounds_to_within_1pt,
            "quality_seeds": self.seeds,
        }


def dirichlet_hospitals(y: np.ndarray, *, hospitals: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Row indexes per hospital: each class's rows shared among the hospitals in Dirichlet(alpha) shares."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(hospitals)]
    for label in (0, 1):
        of_label = rng.permutation(np.flatnonzero(y == label))
        cuts = (np.cumsum(rng.dirichlet([alpha] * hospitals))[:-1] * len(of_label)).astype(int)
        for part, chunk in zip(parts, np.split(of_label, cuts), strict=True):
            part += chunk.tolist()
    return [np.array(sorted(part), dtype=np.int64) for part in parts]


def _one_seed(seed: int, *, rounds: int, hospitals: int, alpha: float) -> tuple[float, list[float]]:
    train, test = training_split(), held_out()
    X_train, y_train, X_test, y_test = train.X, train.y, test.X, test.y
    parts = dirichlet_hospitals(y_train.numpy(), hospitals=hospitals, alpha=alpha, seed=seed)
    sites = [(f"hospital-{i}", X_train[rows], y_train[rows]) for i, rows in enumerate(parts) if len(rows)]
    moments = FeatureMoments.pooled([FeatureMoments.of(features) for _, features, _ in sites])
    start = initial_weights(spec=MODEL, seed=seed, moments=moments)

    def f1_of(weights: dict[str, torch.Tensor]) -> float:
        return evaluate(load_model(spec=MODEL, weights=weights), X=X_test, y=y_test).f1

    union = np.concatenate(parts)
    central = train_locally(
        model_spec=MODEL,
        global_weights=start,
        X=X_train[union],
        y=y_train[union],
        epochs=rounds,
        seed=seed,
        **SETTINGS,
    )
    weights, per_round = start, []
    for round_number in range(1, rounds + 1):
        updates = [
            ModelUpdate(
                hospital_id=hospital,
                sample_count=len(labels),
                weights=train_locally(
                    model_spec=MODEL,
                    global_weights=weights,
                    X=features,
                    y=labels,
                    epochs=1,
                    seed=round_seed(seed=seed, hospital_id=hospital, round_number=round_number),
                    **SETTINGS,
                ).weights,
            )
            for hospital, features, labels in sites
        ]
        weights = FedAvg().aggregate(global_weights=weights, updates=updates).weights
        per_round.append(f1_of(weights))
    return f1_of(central.weights), per_round


def measure_quality(
    *, seeds: int = 5, rounds: int = 30, hospitals: int = 5, alpha: float = 0.5
) -> QualityRun:
    with torch.random.fork_rng(devices=[]):
        runs = [_one_seed(seed, rounds=rounds, hospitals=hospitals, alpha=alpha) for seed in range(seeds)]
    central = statistics.fmean(c for c, _ in runs)
    per_round = tuple(statistics.fmean(run[1][r] for run in runs) for r in range(rounds))
    within = [f1 >= central - 0.01 for f1 in per_round]
    # the first round from which it stays within a point (a lucky early round does not count)
    first = next((r for r in range(rounds) if all(within[r:])), None)
    return QualityRun(
        seeds=seeds,
        rounds=rounds,
        central_f1=central,
        fedavg_f1=per_round[-1],
        fedavg_f1_per_round=per_round,
        rounds_to_within_1pt=None if first is None else first + 1,
    )
