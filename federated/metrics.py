"""Evaluation of a binary classifier on one split (pure torch and numpy, no Django: the hospital worker
evaluates on its validation split, the coordinator on its held-out test set), and the worker's
deterministic train/validation split.

Positive class 1 (malignant); a row is predicted positive when its logit is > 0 (probability > 0.5).
AUROC is the Mann-Whitney statistic with average ranks for ties (a tie between a positive and a
negative counts one half), computed here rather than by sklearn so that the tests can hold it against
sklearn as an independent implementation. All values are plain floats, JSON-able via `as_dict`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class SplitMetrics:
    """Metrics of one model on one split. `auroc` is None when the split holds one class only (it is
    undefined there); accuracy, f1 and loss are NaN for an empty split."""

    count: int
    positives: int
    accuracy: float
    f1: float
    auroc: float | None
    loss: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy(*, y_true: Tensor, y_pred: Tensor) -> float:
    if y_true.numel() == 0:
        return float("nan")
    return float((y_true.long() == y_pred.long()).double().mean())


def f1_score(*, y_true: Tensor, y_pred: Tensor) -> float:
    """F1 of the positive class: 2·TP / (2·TP + FP + FN); 0 when there is no positive, true or predicted
    (sklearn's zero_division=0)."""
    if y_true.numel() == 0:
        return float("nan")
    truth, predicted = y_true.bool(), y_pred.bool()
    true_positives = int((truth & predicted).sum())
    denominator = int(truth.sum()) + int(predicted.sum())  # = 2·TP + FP + FN
    return 0.0 if denominator == 0 else 2 * true_positives / denominator


def auroc(*, y_true: Tensor, scores: Tensor) -> float | None:
    """Area under the ROC curve: P(score of a random positive > score of a random negative), ties 1/2."""
    truth = y_true.bool().numpy()
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return None
    values = scores.detach().to(torch.float64).numpy()
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # 1-based rank of each distinct value's last occurrence
    average_rank = last_rank - (counts - 1) / 2
    rank_sum = float(average_rank[inverse][truth].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def bce_loss(*, logits: Tensor, y_true: Tensor) -> float:
    """Mean binary cross-entropy of the logits (NaN for an empty split)."""
    if y_true.numel() == 0:
        return float("nan")
    loss = nn.functional.binary_cross_entropy_with_logits(logits.double(), y_true.double())
    return float(loss)


def classification_metrics(*, logits: Tensor, y_true: Tensor) -> SplitMetrics:
    logits = logits.detach().reshape(-1)
    y_true = y_true.reshape(-1)
    predicted = logits > 0
    return SplitMetrics(
        count=int(y_true.numel()),
        positives=int(y_true.bool().sum()),
        accuracy=accuracy(y_true=y_true, y_pred=predicted),
        f1=f1_score(y_true=y_true, y_pred=predicted),
        auroc=auroc(y_true=y_true, scores=logits),
        loss=bce_loss(logits=logits, y_true=y_true),
    )


def evaluate(model: nn.Module, *, X: Tensor, y: Tensor) -> SplitMetrics:
    """The model's metrics on (X, y), in eval mode and without building a graph."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(X)
    finally:
        model.train(was_training)
    return classification_metrics(logits=logits, y_true=y)


def validation_split(keys: Sequence[str], *, seed: int, fraction: float = 0.2) -> tuple[Tensor, Tensor]:
    """(train indices, validation indices) into `keys` (one per row: the row's patient address).

    A row is in validation iff SHA-256(seed, key) falls below `fraction`: deterministic per patient and
    independent of the other rows, so a patient stays on the same side in every round of a job even as
    revocations change the release (a position-based shuffle would move rows from validation into
    training). The validation share is `fraction` in expectation, not exactly.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1); got {fraction!r}")
    threshold = int(fraction * 2**64)
    in_validation = torch.tensor([_key_hash(seed, key) < threshold for key in keys], dtype=torch.bool)
    indices = torch.arange(len(keys))
    return indices[~in_validation], indices[in_validation]


def _key_hash(seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
