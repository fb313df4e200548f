"""Each aggregation strategy against hand-computed values, its properties under hypothesis, robustness to
one hospital scaling its update, and the registry a job names its strategy through."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from federated.strategies import (
    STRATEGIES,
    FedAvg,
    FedProx,
    InvalidStrategy,
    Krum,
    Median,
    TrimmedMean,
    TrustScore,
    strategy_from_spec,
)
from federated.updates import ModelUpdate

ZERO = {"w": torch.zeros(1, 2), "b": torch.zeros(1)}


def vec_update(hospital_id: str, values: list[float], samples: int = 1) -> ModelUpdate:
    """An update of the two-parameter model ZERO: values = [w00, w01, b]."""
    w = torch.tensor([values[:2]], dtype=torch.float32)
    b = torch.tensor(values[2:], dtype=torch.float32)
    return ModelUpdate(hospital_id=hospital_id, weights={"w": w, "b": b}, sample_count=samples)


def as_list(weights: dict[str, torch.Tensor]) -> list[float]:
    return [*weights["w"].reshape(-1).tolist(), *weights["b"].tolist()]


def rows(values: list[list[float]], samples: list[int] | None = None) -> list[ModelUpdate]:
    counts = samples or [1] * len(values)
    return [
        vec_update(f"h{i}", row, count) for i, (row, count) in enumerate(zip(values, counts, strict=True))
    ]


# Hand-computed values --------------------------------------------------------------------------------


def test_fedavg_weights_each_update_by_its_share_of_samples() -> None:
    # 1/4 · [1, 2, 0] + 3/4 · [3, 6, 4] = [2.5, 5, 3]
    result = FedAvg().aggregate(global_weights=ZERO, updates=rows([[1, 2, 0], [3, 6, 4]], samples=[10, 30]))
    assert as_list(result.weights) == [2.5, 5.0, 3.0]
    assert result.report.coefficients == {"h0": 0.25, "h1": 0.75}
    assert result.report.sample_count == 40
    assert result.report.shift_l2 == pytest.approx(math.sqrt(2.5**2 + 5**2 + 3**2))
    assert result.weights["w"].shape == (1, 2) and result.weights["w"].dtype == torch.float32


def test_fedprox_aggregates_as_fedavg_and_hands_mu_to_the_workers() -> None:
    updates = rows([[1, 2, 0], [3, 6, 4]], samples=[10, 30])
    strategy = FedProx(mu=0.05)
    assert strategy.configure_round(round_number=3, global_weights=ZERO) == {"proximal_mu": 0.05}
    assert FedAvg().configure_round(round_number=3, global_weights=ZERO) == {}
    assert as_list(strategy.aggregate(global_weights=ZERO, updates=updates).weights) == [2.5, 5.0, 3.0]


def test_median_of_an_odd_count_is_the_middle_value_per_coordinate() -> None:
    result = Median().aggregate(global_weights=ZERO, updates=rows([[1, 5, -3], [2, -1, 7], [10, 0, 1]]))
    assert as_list(result.weights) == [2.0, 0.0, 1.0]
    assert result.report.coefficients == {}


def test_median_of_an_even_count_averages_the_two_middle_values() -> None:
    updates = rows([[1, 5, 0], [2, -1, 0], [10, 0, 0], [4, 100, 0]], samples=[1, 1, 1, 1000])
    assert as_list(Median().aggregate(global_weights=ZERO, updates=updates).weights) == [3.0, 2.5, 0.0]


def test_trimmed_mean_drops_the_extremes_per_coordinate() -> None:
    # beta 0.2 of 5 updates trims one from each end: mean(2, 3, 4) = 3 and mean(0, 1, 2) = 1
    updates = rows([[1, 0, 0], [2, 1, 0], [3, 2, 0], [4, -50, 0], [100, 50, 0]])
    assert as_list(TrimmedMean(beta=0.2).aggregate(global_weights=ZERO, updates=updates).weights) == [3, 1, 0]
    # beta 0.1 of 5 trims floor(0.5) = 0: the plain mean
    assert as_list(
        TrimmedMean(beta=0.1).aggregate(global_weights=ZERO, updates=updates).weights
    ) == pytest.approx([22, 0.6, 0])


def test_krum_keeps_the_update_closest_to_its_neighbours() -> None:
    # 1-D positions 0, 1, 2, 3, 100 with f = 1: each sums the squared distances to its 2 nearest:
    # 0 -> 1+4 = 5, 1 -> 1+1 = 2, 2 -> 1+1 = 2, 3 -> 1+4 = 5, 100 -> 97²+98²; the tie goes to h1.
    updates = rows([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [100, 0, 0]], samples=[1, 1, 3, 1, 1])
    one = Krum(byzantine=1).aggregate(global_weights=ZERO, updates=updates)
    assert as_list(one.weights) == [1.0, 0.0, 0.0]
    two = Krum(byzantine=1, selected=2).aggregate(global_weights=ZERO, updates=updates)
    assert as_list(two.weights) == [1.75, 0.0, 0.0]  # h1 and h2 by samples: (1·1 + 3·2) / 4
    assert two.report.coefficients == {"h0": 0.0, "h1": 0.25, "h2": 0.75, "h3": 0.0, "h4": 0.0}


def test_krum_needs_at_least_2f_plus_3_updates() -> None:
    with pytest.raises(InvalidStrategy) as caught:
        Krum(byzantine=1).aggregate(global_weights=ZERO, updates=rows([[0, 0, 0]] * 4))
    assert caught.value.code == "too_few_updates" and "at least 5" in caught.value.detail


def test_trust_score_weights_updates_by_normalised_validation_scores() -> None:
    updates = rows([[4, 0, 0], [8, 0, 0], [100, 0, 0]], samples=[1, 1, 1000])
    scores = {4.0: 0.9, 8.0: 0.3, 100.0: 0.0}
    result = TrustScore(score=lambda weights: scores[float(weights["w"][0, 0])]).aggregate(
        global_weights=ZERO, updates=updates
    )
    assert as_list(result.weights) == pytest.approx([0.75 * 4 + 0.25 * 8, 0, 0])
    assert result.report.coefficients == pytest.approx({"h0": 0.75, "h1": 0.25, "h2": 0.0})
    assert result.report.scores == pytest.approx({"h0": 0.9, "h1": 0.3, "h2": 0.0})


def test_trust_score_clamps_scores_and_applies_the_minimum() -> None:
    updates = rows([[4, 0, 0], [8, 0, 0], [16, 0, 0], [32, 0, 0]])
    scores = {4.0: 1.7, 8.0: float("nan"), 16.0: -2.0, 32.0: 0.4}
    score = lambda weights: scores[float(weights["w"][0, 0])]  # noqa: E731
    clamped = TrustScore(score=score).aggregate(global_weights=ZERO, updates=updates).report
    assert clamped.scores == pytest.approx({"h0": 1.0, "h1": 0.0, "h2": 0.0, "h3": 0.4})
    assert clamped.coefficients == pytest.approx({"h0": 1 / 1.4, "h1": 0.0, "h2": 0.0, "h3": 0.4 / 1.4})
    floored = TrustScore(score=score, min_score=0.5).aggregate(global_weights=ZERO, updates=updates)
    assert as_list(floored.weights) == [4.0, 0.0, 0.0]


def test_trust_score_keeps_the_global_model_when_no_update_is_trusted() -> None:
    start = {"w": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([3.0])}
    result = TrustScore(score=lambda weights: 0.0).aggregate(
        global_weights=start, updates=rows([[9, 9, 9], [8, 8, 8]])
    )
    assert as_list(result.weights) == [1.0, 2.0, 3.0]
    assert result.report.kept_global and result.report.shift_l2 == 0.0


def test_trust_score_with_an_accuracy_scorer_silences_a_sign_flipped_update() -> None:
    """A real scorer: accuracy of a linear classifier sign(x·w + b) on a small validation set."""
    features = torch.tensor([[1.0, 0.2], [0.8, -0.1], [-1.0, 0.3], [-0.7, -0.4]])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])

    def accuracy(weights) -> float:
        predicted = (features @ weights["w"].T + weights["b"]).squeeze(1) > 0
        return float((predicted == labels.bool()).float().mean())

    honest = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0]]
    updates = rows([*honest, [-50.0, 0.0, 0.0]], samples=[10, 10, 1000])
    result = TrustScore(score=accuracy).aggregate(global_weights=ZERO, updates=updates)
    assert result.report.coefficients["h2"] == 0.0
    assert as_list(result.weights) == pytest.approx([0.95, 0.05, 0.0])


def test_trust_score_without_a_scorer_refuses_to_aggregate() -> None:
    with pytest.raises(InvalidStrategy) as caught:
        TrustScore().aggregate(global_weights=ZERO, updates=rows([[1, 1, 1]]))
    assert caught.value.field == "strategy.score"


@pytest.mark.parametrize("count", [1, 2, 3, 10, 32, 33, 40])
def test_median_and_trimmed_mean_match_independent_references_at_every_round_size(count: int) -> None:
    """Small rounds sort by a min/max network, large ones by torch.sort: both must agree with
    torch.quantile's median and a trimmed mean from torch.topk."""
    generator = torch.Generator().manual_seed(count)
    matrix = torch.randn(count, 64, generator=generator).round(decimals=1)  # ties on purpose
    updates = [
        ModelUpdate(hospital_id=f"h{i}", weights={"v": row.clone()}, sample_count=1)
        for i, row in enumerate(matrix)
    ]
    start = {"v": torch.zeros(64)}
    median = Median().aggregate(global_weights=start, updates=updates).weights["v"]
    assert torch.allclose(median, matrix.quantile(0.5, dim=0), atol=1e-6)
    trim = math.floor(0.25 * count)
    kept = matrix.topk(count - trim, dim=0).values.topk(count - 2 * trim, dim=0, largest=False).values
    trimmed = TrimmedMean(beta=0.25).aggregate(global_weights=start, updates=updates).weights["v"]
    assert torch.allclose(trimmed, kept.mean(dim=0), atol=1e-6)


# Robustness: one hospital sends its update scaled by 100 ------------------------------------------------


def test_median_and_trimmed_mean_resist_a_scaled_update_while_fedavg_does_not() -> None:
    generator = torch.Generator().manual_seed(7)
    truth = torch.randn(1000, generator=generator)
    honest = [truth + 0.01 * torch.randn(1000, generator=generator) for _ in range(5)]
    scaled = 100 * (truth + 0.01 * torch.randn(1000, generator=generator))
    updates = [
        ModelUpdate(hospital_id=f"h{i}", weights={"w": weights}, sample_count=50)
        for i, weights in enumerate([*honest, scaled])
    ]
    start = {"w": torch.zeros(1000)}

    def distance(strategy) -> float:
        return float((strategy.aggregate(global_weights=start, updates=updates).weights["w"] - truth).norm())

    truth_norm = float(truth.norm())  # about 31.6: the distance of "learned nothing"
    assert distance(Median()) < 0.05 * truth_norm
    assert distance(TrimmedMean(beta=0.2)) < 0.05 * truth_norm
    assert distance(Krum(byzantine=1)) < 0.05 * truth_norm
    # FedAvg moves (100 - 1) / 6 ≈ 16.5 model-lengths away from the truth
    assert distance(FedAvg()) > 10 * truth_norm


# Properties --------------------------------------------------------------------------------------------

VALUES = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)
ROW = st.lists(VALUES, min_size=3, max_size=3)
SAMPLES = st.integers(min_value=1, max_value=10**6)
PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(row=ROW, samples=st.lists(SAMPLES, min_size=1, max_size=8))
def test_fedavg_of_identical_updates_is_that_update(row: list[float], samples: list[int]) -> None:
    updates = rows([row] * len(samples), samples=samples)
    result = FedAvg().aggregate(global_weights=ZERO, updates=updates)
    assert as_list(result.weights) == pytest.approx(row, rel=1e-5, abs=1e-4)


@PROPERTY
@given(data=st.lists(st.tuples(ROW, SAMPLES), min_size=1, max_size=8), seed=st.randoms())
def test_fedavg_ignores_the_order_of_updates_and_its_shares_sum_to_one(data, seed) -> None:
    updates = [vec_update(f"h{i}", row, count) for i, (row, count) in enumerate(data)]
    shuffled = list(updates)
    seed.shuffle(shuffled)
    first = FedAvg().aggregate(global_weights=ZERO, updates=updates)
    second = FedAvg().aggregate(global_weights=ZERO, updates=shuffled)
    assert as_list(first.weights) == pytest.approx(as_list(second.weights), rel=1e-5, abs=1e-3)
    assert sum(first.report.coefficients.values()) == pytest.approx(1.0)
    assert first.report.coefficients == pytest.approx(second.report.coefficients)


@PROPERTY
@given(
    values=st.lists(ROW, min_size=1, max_size=9),
    beta=st.floats(min_value=0.0, max_value=0.49),
)
def test_median_and_trimmed_mean_lie_within_the_coordinate_wise_range(values, beta: float) -> None:
    updates = rows(values)
    low = torch.tensor(values).min(dim=0).values
    high = torch.tensor(values).max(dim=0).values
    for strategy in (Median(), TrimmedMean(beta=beta)):
        result = torch.tensor(as_list(strategy.aggregate(global_weights=ZERO, updates=updates).weights))
        slack = 1e-5 * high.abs().clamp(min=1.0)
        assert bool(((low - slack) <= result).all() and (result <= (high + slack)).all())


@PROPERTY
@given(scores=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=8))
def test_trust_weights_lie_in_0_1_and_sum_to_one(scores: list[float]) -> None:
    updates = rows([[float(i), 0, 0] for i in range(len(scores))])
    by_update = {float(i): score for i, score in enumerate(scores)}
    report = (
        TrustScore(score=lambda weights: by_update[float(weights["w"][0, 0])])
        .aggregate(global_weights=ZERO, updates=updates)
        .report
    )
    shares = list(report.coefficients.values())
    assert all(0.0 <= share <= 1.0 for share in shares)
    if any(score > 0 for score in scores):
        assert sum(shares) == pytest.approx(1.0) and not report.kept_global
    else:
        assert sum(shares) == 0.0 and report.kept_global


# Registry ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "fedavg"},
        {"name": "fedprox", "mu": 0.1},
        {"name": "median"},
        {"name": "trimmed_mean", "beta": 0.2},
        {"name": "trust_score", "min_score": 0.5},
        {"name": "krum", "byzantine": 2, "selected": 3},
    ],
    ids=lambda spec: spec["name"],
)
def test_a_job_spec_builds_its_strategy_and_round_trips(spec) -> None:
    strategy = strategy_from_spec(spec)
    assert isinstance(strategy, STRATEGIES[spec["name"]])
    assert strategy.spec() == spec
    assert strategy_from_spec(strategy.spec()).spec() == spec


def test_registry_defaults_fill_missing_parameters() -> None:
    assert strategy_from_spec({"name": "trimmed_mean"}).spec() == {"name": "trimmed_mean", "beta": 0.1}


def test_registry_passes_the_scorer_to_trust_score() -> None:
    strategy = strategy_from_spec({"name": "trust_score"}, score=lambda weights: 1.0)
    result = strategy.aggregate(global_weights=ZERO, updates=rows([[2, 2, 2]]))
    assert as_list(result.weights) == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "fedsgd"}, "strategy.name"),
        ({"beta": 0.2}, "strategy.name"),
        ({"name": "trimmed_mean", "beta": 0.5}, "strategy.beta"),
        ({"name": "trimmed_mean", "beta": -0.1}, "strategy.beta"),
        ({"name": "trimmed_mean", "beta": "0.2"}, "strategy.beta"),
        ({"name": "trimmed_mean", "beta": True}, "strategy.beta"),
        ({"name": "trimmed_mean", "beta": float("nan")}, "strategy.beta"),
        ({"name": "trimmed_mean", "trim": 0.2}, "strategy.trim"),
        ({"name": "fedprox", "mu": -1}, "strategy.mu"),
        ({"name": "fedprox", "mu": float("inf")}, "strategy.mu"),
        ({"name": "fedavg", "mu": 0.1}, "strategy.mu"),
        ({"name": "krum", "byzantine": -1}, "strategy.byzantine"),
        ({"name": "krum", "selected": 0}, "strategy.selected"),
        ({"name": "krum", "selected": 1.5}, "strategy.selected"),
        ({"name": "trust_score", "min_score": 1.0}, "strategy.min_score"),
        ({"name": "trust_score", "score": "accuracy"}, "strategy.score"),
    ],
)
def test_registry_refuses_bad_specs_naming_the_field(spec, field: str) -> None:
    with pytest.raises(InvalidStrategy) as caught:
        strategy_from_spec(spec)
    assert caught.value.field == field
    assert caught.value.status_code == 400 and caught.value.code == "invalid_strategy"


def test_registry_refuses_a_spec_that_is_not_an_object() -> None:
    with pytest.raises(InvalidStrategy) as caught:
        strategy_from_spec(["fedavg"])  # type: ignore[arg-type]
    assert caught.value.field == "strategy"
