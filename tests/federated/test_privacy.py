"""Differential privacy at the hospital worker: DP-SGD rounds report the ε they spend, and the hospital's
ledger refuses a round over its budget before training and remembers what was spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from sklearn.datasets import load_breast_cancer

from federated.local_training import LocalResult, train_locally
from federated.metrics import evaluate
from federated.networks import FeatureMoments, InvalidPlan, initial_weights, load_model
from federated.privacy import (
    DPConfig,
    DPRound,
    PrivacyLedger,
    PrivacyRefused,
    composed_epsilon,
    plan_dp_round,
)

LOGISTIC = {"name": "logistic"}
DP = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5}


@pytest.fixture(scope="module")
def table() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_breast_cancer()
    return torch.tensor(data.data, dtype=torch.float32), torch.tensor(1 - data.target)


def _dp_train(table: tuple[torch.Tensor, torch.Tensor], **overrides: Any) -> LocalResult:
    X, y = table
    settings: dict[str, Any] = {
        "model_spec": LOGISTIC,
        "global_weights": initial_weights(spec=LOGISTIC, seed=0, moments=FeatureMoments.of(X)),
        "X": X,
        "y": y,
        "epochs": 1,
        "batch_size": 64,
        "lr": 0.5,
        "seed": 0,
        "dp": DP,
    }
    return train_locally(**(settings | overrides))


def _round(epsilon_target_sigma: float = 1.0, *, steps: int = 10, sample_rate: float = 0.1) -> DPRound:
    return DPRound(
        noise_multiplier=epsilon_target_sigma,
        sample_rate=sample_rate,
        steps=steps,
        delta=1e-5,
        epsilon=composed_epsilon([(epsilon_target_sigma, sample_rate, steps)], delta=1e-5),
    )


# --- DP-SGD rounds -------------------------------------------------------------------------------


def test_a_dp_round_reports_epsilon_that_grows_with_epochs_and_falls_with_noise(table) -> None:
    one_epoch = _dp_train(table, epochs=1)
    three_epochs = _dp_train(table, epochs=3)
    more_noise = _dp_train(table, epochs=1, dp=DP | {"noise_multiplier": 2.0})
    assert (
        one_epoch.epsilon is not None and three_epochs.epsilon is not None and more_noise.epsilon is not None
    )
    assert 0 < more_noise.epsilon < one_epoch.epsilon < three_epochs.epsilon
    assert one_epoch.dp is not None and one_epoch.dp.steps == 9  # ceil(569 / 64) Poisson batches
    assert one_epoch.dp.delta == DP["delta"]


def test_a_dp_round_spends_exactly_what_was_planned_before_training(table) -> None:
    X, _ = table
    planned = plan_dp_round(sample_count=len(X), batch_size=64, epochs=2, dp=DPConfig.from_json(DP))
    result = _dp_train(table, epochs=2)
    assert result.dp is not None
    assert result.dp.steps == planned.steps and result.dp.sample_rate == pytest.approx(planned.sample_rate)
    assert result.dp.epsilon == pytest.approx(planned.epsilon, rel=1e-9)


def test_a_dp_model_still_learns_the_task(table) -> None:
    X, y = table
    result = _dp_train(table, epochs=3)
    report = evaluate(load_model(spec=LOGISTIC, weights=result.weights), X=X, y=y)
    assert result.train_loss < result.initial_loss
    assert report.accuracy > 0.85


def test_dp_noise_does_not_come_from_the_plan_seed(table) -> None:
    """The coordinator knows the seed; noise it could replay is noise it could subtract."""
    first, second = _dp_train(table, seed=3), _dp_train(table, seed=3)
    assert not torch.equal(first.weights["layers.0.weight"], second.weights["layers.0.weight"])


def test_the_fedprox_pull_survives_dp_sgd(table) -> None:
    """Opacus replaces each gradient by the clipped, noised per-sample ones; the pull is its own step."""
    X, _ = table
    start = initial_weights(spec=LOGISTIC, seed=0, moments=FeatureMoments.of(X))

    def drift(mu: float) -> float:
        result = _dp_train(table, global_weights=start, proximal_mu=mu, lr=0.01, epochs=2)
        return sum(float((result.weights[n] - start[n]).square().sum()) for n in start) ** 0.5

    assert drift(100.0) < 0.2 * drift(0.0)


@pytest.mark.parametrize(
    ("dp", "field"),
    [
        ({"noise_multiplier": 0, "max_grad_norm": 1.0, "delta": 1e-5}, "dp.noise_multiplier"),
        ({"noise_multiplier": 1.0, "max_grad_norm": float("inf"), "delta": 1e-5}, "dp.max_grad_norm"),
        ({"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1.0}, "dp.delta"),
        ({"noise_multiplier": True, "max_grad_norm": 1.0, "delta": 1e-5}, "dp.noise_multiplier"),
        (DP | {"epsilon": 3.0}, "dp.epsilon"),
        ([1.0], "dp"),
    ],
)
def test_bad_dp_settings_are_refused_naming_the_field(dp: Any, field: str) -> None:
    with pytest.raises(InvalidPlan) as refused:
        DPConfig.from_json(dp)
    assert refused.value.field == field


# --- the hospital's ledger -----------------------------------------------------------------------


def _ledger(path: Path, *, budget: float = 8.0, hospital: str = "st-mary") -> PrivacyLedger:
    return PrivacyLedger(path=path, hospital=hospital, epsilon_budget=budget, delta=1e-5)


def test_the_ledger_refuses_a_round_over_budget_before_training_with_the_reason(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "ledger.json", budget=8.0)
    small = _round(1.0, steps=10)
    assert small.epsilon < 8.0
    ledger.reserve(key="job-1/round-1", planned=small)
    ledger.commit(key="job-1/round-1", spent=small)
    before = (tmp_path / "ledger.json").read_text()
    huge = _round(0.6, steps=500, sample_rate=0.5)
    with pytest.raises(PrivacyRefused) as refused:
        ledger.reserve(key="job-2/round-1", planned=huge)
    assert refused.value.reason == "privacy_budget_exceeded"
    assert "job-2/round-1" in refused.value.detail and "budget ε=8" in refused.value.detail
    assert (tmp_path / "ledger.json").read_text() == before  # nothing recorded for a refused round
    assert ledger.totals().rounds == 1


def test_a_worker_flow_reserves_trains_and_commits_what_the_round_spent(table, tmp_path: Path) -> None:
    X, _ = table
    ledger = _ledger(tmp_path / "ledger.json", budget=8.0)
    dp = DPConfig.from_json(DP)
    planned = plan_dp_round(sample_count=len(X), batch_size=64, epochs=1, dp=dp)
    ledger.reserve(key="job-1/round-1", planned=planned)
    result = _dp_train(table)
    assert result.dp is not None
    totals = ledger.commit(key="job-1/round-1", spent=result.dp)
    assert totals.epsilon == pytest.approx(result.dp.epsilon)
    rounds_until_refused = 1
    with pytest.raises(PrivacyRefused):
        for number in range(2, 100):
            ledger.reserve(key=f"job-1/round-{number}", planned=planned)
            ledger.commit(key=f"job-1/round-{number}", spent=planned)
            rounds_until_refused += 1
    assert (
        ledger.totals().epsilon
        <= 8.0
        < composed_epsilon(
            [(planned.noise_multiplier, planned.sample_rate, planned.steps)] * (rounds_until_refused + 1),
            delta=1e-5,
        )
    )


def test_the_ledger_persists_across_instances_and_jobs(tmp_path: Path) -> None:
    path = tmp_path / "hospitals" / "st-mary" / "privacy.json"
    first = _ledger(path)
    first.reserve(key="job-1/round-1", planned=_round())
    first.commit(key="job-1/round-1", spent=_round())
    second = _ledger(path)  # a restarted worker
    second.reserve(key="job-2/round-1", planned=_round())
    totals = _ledger(path).totals()
    assert totals.rounds == 2
    assert totals.epsilon == pytest.approx(composed_epsilon([(1.0, 0.1, 10)] * 2, delta=1e-5))
    document = json.loads(path.read_text())
    assert [entry["state"] for entry in document["rounds"]] == ["spent", "reserved"]
    assert document["hospital"] == "st-mary" and document["composition"] == "rdp"


def test_composed_epsilon_is_tighter_than_the_sum_but_more_than_one_round(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "ledger.json", budget=100.0)
    one = _round()
    for number in range(5):
        ledger.reserve(key=f"job/round-{number}", planned=one)
    totals = ledger.totals()
    assert one.epsilon < totals.epsilon < totals.epsilon_sum == pytest.approx(5 * one.epsilon)
    assert totals.delta_sum == pytest.approx(5e-5) and totals.epsilon_left == pytest.approx(
        100 - totals.epsilon
    )


def test_a_retried_round_takes_over_its_reservation_but_a_rerun_after_commit_is_charged_again(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path / "ledger.json", budget=100.0)
    ledger.reserve(key="job-1/round-1", planned=_round())
    ledger.reserve(key="job-1/round-1", planned=_round())  # the worker died before its weights left
    assert ledger.totals().rounds == 1
    ledger.commit(key="job-1/round-1", spent=_round())
    ledger.reserve(key="job-1/round-1", planned=_round())  # its output left once already
    assert ledger.totals().rounds == 2


def test_a_released_reservation_no_longer_counts(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "ledger.json")
    ledger.reserve(key="job-1/round-1", planned=_round())
    ledger.release(key="job-1/round-1")
    assert ledger.totals().epsilon == 0.0 and ledger.totals().rounds == 0
    with pytest.raises(PrivacyRefused) as refused:
        ledger.commit(key="job-1/round-1", spent=_round())
    assert refused.value.reason == "privacy_round_not_reserved"


def test_an_unreadable_or_foreign_ledger_is_refused_never_reset(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    with pytest.raises(PrivacyRefused) as unreadable:
        _ledger(path).reserve(key="job/round-1", planned=_round())
    assert unreadable.value.reason == "privacy_ledger_unreadable"
    assert path.read_text() == "{not json"
    path.unlink()
    _ledger(path, hospital="st-mary").reserve(key="job/round-1", planned=_round())
    with pytest.raises(PrivacyRefused) as foreign:
        _ledger(path, hospital="general").totals()
    assert foreign.value.reason == "privacy_ledger_mismatch"


def test_a_ledger_needs_a_sane_budget(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="budget"):
        PrivacyLedger(path=tmp_path / "l.json", hospital="h", epsilon_budget=0.0, delta=1e-5)
    with pytest.raises(ValueError, match="budget"):
        PrivacyLedger(path=tmp_path / "l.json", hospital="h", epsilon_budget=1.0, delta=1.5)
