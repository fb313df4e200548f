"""The coordinator's held-out data for the demo task: a fixed 20% of scikit-learn's bundled Breast Cancer
Wisconsin (Diagnostic) table that no hospital ever holds, on which every model version is evaluated.

The split is stratified by label and seeded (numpy's PCG64, stable across numpy versions): 20% of the
malignant rows and 20% of the benign rows (rounded), 113 of 569. `training_row_indices()` are the other
80%: the demo writes patients' charts from those rows only, so a test row is never any patient's chart
and the test metrics measure generalisation, not memory. Features are in federated/features.py's order,
label 1 = malignant (scikit-learn's target is the opposite).

The trust-score strategy scores each update on data the coordinator holds. Scoring on the test rows would
let the test set choose the model it then grades, so a trust-score job splits the held-out rows once more
(seeded halves): `scoring_split()` scores updates, `evaluation_split(scored=True)` grades the versions.
(Function names avoid a `test_` prefix, which pytest would collect from a test module importing them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import Tensor

from federated.features import FEATURE_NAMES

SPLIT_SEED = 20_240_514
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Rows of the table: X [n, 30] float32 in FEATURE_NAMES order, y [n] float32 (1 = malignant)."""

    rows: tuple[int, ...]  # indices into scikit-learn's table, ascending
    X: Tensor
    y: Tensor


@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    table = load_breast_cancer()
    names = [str(name) for name in table.feature_names]
    columns = [names.index(name) for name in FEATURE_NAMES]  # ValueError if the table ever renames one
    features = np.asarray(table.data, dtype=np.float64)[:, columns]
    labels = 1 - np.asarray(table.target, dtype=np.int64)  # scikit-learn: 0 = malignant
    return features, labels


@lru_cache(maxsize=1)
def _held_out_order() -> tuple[int, ...]:
    """The held-out rows in the seeded order (for the scoring halves); stratified by label."""
    _, labels = _table()
    rng = np.random.default_rng(SPLIT_SEED)
    chosen: list[int] = []
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        take = round(TEST_FRACTION * len(rows))
        chosen.extend(int(row) for row in rng.permutation(rows)[:take])
    order = rng.permutation(np.array(chosen))
    return tuple(int(row) for row in order)


def _split(rows: tuple[int, ...] | list[int]) -> Split:
    features, labels = _table()
    ordered = tuple(sorted(rows))
    index = list(ordered)
    return Split(
        rows=ordered,
        X=torch.tensor(features[index], dtype=torch.float32),
        y=torch.tensor(labels[index], dtype=torch.float32),
    )


@lru_cache(maxsize=1)
def held_out() -> Split:
    """The whole held-out 20%."""
    return _split(_held_out_order())


@lru_cache(maxsize=1)
def scoring_split() -> Split:
    """Half of the held-out rows: what a trust-score job scores updates on (never graded on)."""
    order = _held_out_order()
    return _split(order[: len(order) // 2])


@lru_cache(maxsize=2)
def evaluation_split(*, scored: bool = False) -> Split:
    """What a job's model versions are graded on: the whole held-out set, or, for a job whose strategy
    scores updates on held-out rows (`scored`), the half it did not score on."""
    if not scored:
        return held_out()
    order = _held_out_order()
    return _split(order[len(order) // 2 :])


def training_row_indices() -> list[int]:
    """The table rows outside the held-out set (ascending): the only rows that may become charts."""
    held_out = set(_held_out_order())
    features, _ = _table()
    return [row for row in range(len(features)) if row not in held_out]


@lru_cache(maxsize=1)
def training_split() -> Split:
    """The rows outside the held-out set as tensors (the central baseline of the benchmark trains on them)."""
    return _split(training_row_indices())
