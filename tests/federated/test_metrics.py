"""Evaluation metrics of the hospital worker and the coordinator, held against scikit-learn as an
independent implementation, and the per-patient train/validation split."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from federated.metrics import (
    accuracy,
    auroc,
    bce_loss,
    classification_metrics,
    evaluate,
    f1_score,
    validation_split,
)

# Labels with scores drawn from a few values, so that ties (within and across classes) are common.
LABELLED_SCORES = st.lists(
    st.tuples(st.integers(0, 1), st.integers(-3, 3) | st.floats(-5, 5, allow_nan=False)),
    min_size=1,
    max_size=60,
)


def _tensors(rows: list[tuple[int, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    labels, scores = zip(*rows, strict=True)
    return torch.tensor(labels), torch.tensor(scores, dtype=torch.float64)


@settings(max_examples=200, deadline=None)
@given(rows=LABELLED_SCORES)
def test_accuracy_f1_and_auroc_agree_with_sklearn(rows: list[tuple[int, float]]) -> None:
    y_true, scores = _tensors(rows)
    y_pred = scores > 0
    assert accuracy(y_true=y_true, y_pred=y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert f1_score(y_true=y_true, y_pred=y_pred) == pytest.approx(
        sk.f1_score(y_true, y_pred, zero_division=0)
    )
    ours = auroc(y_true=y_true, scores=scores)
    if len(set(y_true.tolist())) < 2:
        assert ours is None
    else:
        assert ours == pytest.approx(sk.roc_auc_score(y_true, scores), abs=1e-12)


def test_auroc_counts_a_tie_between_a_positive_and_a_negative_as_one_half() -> None:
    # Pairs (positive, negative): (2, 1) right, (2, 2) tie, (1, 1) tie, (1, 2) wrong -> (1 + .5 + .5 + 0) / 4.
    value = auroc(y_true=torch.tensor([1, 1, 0, 0]), scores=torch.tensor([2.0, 1.0, 1.0, 2.0]))
    assert value == pytest.approx(0.5)
    assert auroc(y_true=torch.tensor([0, 1]), scores=torch.tensor([0.0, 0.0])) == 0.5


def test_auroc_is_undefined_for_one_class_and_metrics_say_so() -> None:
    report = classification_metrics(logits=torch.tensor([0.3, -1.0]), y_true=torch.tensor([0, 0]))
    assert report.auroc is None
    assert report.as_dict()["auroc"] is None
    assert report.accuracy == 0.5 and report.f1 == 0.0 and report.positives == 0


def test_metrics_of_an_empty_split_are_nan_not_an_error() -> None:
    report = classification_metrics(logits=torch.empty(0), y_true=torch.empty(0, dtype=torch.long))
    assert report.count == 0 and report.auroc is None
    assert math.isnan(report.accuracy) and math.isnan(report.f1) and math.isnan(report.loss)


@settings(max_examples=50, deadline=None)
@given(rows=LABELLED_SCORES)
def test_bce_loss_agrees_with_sklearn_log_loss(rows: list[tuple[int, float]]) -> None:
    y_true, logits = _tensors(rows)
    probabilities = torch.sigmoid(logits).numpy()
    expected = sk.log_loss(y_true.numpy(), probabilities, labels=[0, 1])
    assert bce_loss(logits=logits, y_true=y_true) == pytest.approx(expected, rel=1e-6)


def test_evaluate_runs_the_model_in_eval_mode_and_restores_training_mode() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.9), torch.nn.Flatten(0))
    X, y = torch.randn(50, 4), torch.randint(0, 2, (50,))
    model.train()
    first, second = evaluate(model, X=X, y=y), evaluate(model, X=X, y=y)
    assert first == second  # dropout off: the same numbers twice
    assert model.training
    with torch.no_grad():
        expected = classification_metrics(logits=model[0](X).squeeze(-1), y_true=y)
    assert first == expected


def test_validation_split_is_deterministic_disjoint_and_covers_every_row() -> None:
    keys = [f"0x{index:040x}" for index in range(2000)]
    train, validation = validation_split(keys, seed=7, fraction=0.2)
    again = validation_split(keys, seed=7, fraction=0.2)
    assert torch.equal(train, again[0]) and torch.equal(validation, again[1])
    assert sorted(train.tolist() + validation.tolist()) == list(range(len(keys)))
    assert 0.17 < len(validation) / len(keys) < 0.23
    other_seed = validation_split(keys, seed=8, fraction=0.2)[1]
    assert set(other_seed.tolist()) != set(validation.tolist())


def test_a_patient_stays_on_its_side_when_other_patients_leave() -> None:
    keys = [f"patient-{index}" for index in range(300)]
    _, validation = validation_split(keys, seed=1)
    in_validation = {keys[i] for i in validation.tolist()}
    remaining = [key for index, key in enumerate(keys) if index % 3]  # a third revoked their consent
    _, later = validation_split(remaining, seed=1)
    assert {remaining[i] for i in later.tolist()} == in_validation & set(remaining)


def test_validation_split_refuses_a_fraction_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="fraction"):
        validation_split(["a"], seed=0, fraction=1.0)
    assert validation_split(["a", "b"], seed=0, fraction=0.0)[1].numel() == 0


def test_metrics_are_json_friendly_floats() -> None:
    report = classification_metrics(logits=torch.tensor([2.0, -1.0, 0.5]), y_true=torch.tensor([1, 0, 0]))
    assert all(isinstance(value, int | float) for value in report.as_dict().values())
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.f1 == pytest.approx(2 / 3)  # TP 1, FP 1, FN 0
    assert report.auroc == 1.0
