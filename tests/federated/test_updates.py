"""An update touches the global model only if it fits it: same names and shapes, floating point, finite,
a positive whole sample count, one per hospital. Every refusal names the hospital and the problem, and
one bad update stops the whole aggregation (nothing is averaged in)."""

from __future__ import annotations

import pytest
import torch

from federated.strategies import FedAvg, Median, TrimmedMean
from federated.updates import InvalidUpdate, ModelUpdate, WeightSpec, flatten, unflatten, validate_update
from healthhash.errors import DomainError

GLOBAL = {"layer.weight": torch.zeros(2, 3), "layer.bias": torch.zeros(2)}


def update(
    hospital_id: str = "general",
    *,
    samples: int = 10,
    fill: float = 1.0,
    changes: dict[str, torch.Tensor] | None = None,
) -> ModelUpdate:
    weights = {name: torch.full_like(tensor, fill) for name, tensor in GLOBAL.items()} | (changes or {})
    return ModelUpdate(hospital_id=hospital_id, weights=weights, sample_count=samples)


def refusal(bad: ModelUpdate) -> InvalidUpdate:
    with pytest.raises(InvalidUpdate) as caught:
        validate_update(bad, global_weights=GLOBAL)
    return caught.value


def test_a_sound_update_passes() -> None:
    validate_update(update(), global_weights=GLOBAL)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused_naming_hospital_and_parameter(value: float) -> None:
    bias = torch.tensor([0.5, value])
    error = refusal(update("clinic", changes={"layer.bias": bias}))
    assert isinstance(error, DomainError) and error.code == "invalid_update"
    assert "'clinic'" in error.detail and "'layer.bias'" in error.detail
    assert ("NaN" if value != value else "infinite") in error.detail
    assert error.field == "weights.layer.bias"


def test_wrong_shape_is_refused_with_both_shapes() -> None:
    error = refusal(update("clinic", changes={"layer.weight": torch.zeros(3, 2)}))
    assert "'clinic'" in error.detail and "(3, 2)" in error.detail and "(2, 3)" in error.detail
    assert error.field == "weights.layer.weight"


def test_missing_parameter_is_refused() -> None:
    bad = ModelUpdate(hospital_id="clinic", weights={"layer.weight": torch.zeros(2, 3)}, sample_count=3)
    error = refusal(bad)
    assert "'clinic'" in error.detail and "lacks parameter 'layer.bias'" in error.detail


def test_unknown_parameter_is_refused() -> None:
    error = refusal(update("clinic", changes={"layer.extra": torch.zeros(1)}))
    assert "unknown parameter 'layer.extra'" in error.detail and error.field == "weights.layer.extra"


def test_integer_tensor_is_refused() -> None:
    error = refusal(update("clinic", changes={"layer.bias": torch.zeros(2, dtype=torch.int64)}))
    assert "floating-point" in error.detail and "'clinic'" in error.detail


@pytest.mark.parametrize("samples", [0, -4, True, 2.5])
def test_sample_count_must_be_a_positive_whole_number(samples: object) -> None:
    error = refusal(update("clinic", samples=samples))  # type: ignore[arg-type]
    assert "'clinic'" in error.detail and "sample count" in error.detail and error.field == "sample_count"


def test_a_flat_vector_of_the_wrong_length_is_refused_naming_the_hospital() -> None:
    spec = WeightSpec.of(GLOBAL)
    with pytest.raises(InvalidUpdate, match=r"'clinic'.*8 values"):
        ModelUpdate.from_flat(torch.zeros(7), spec=spec, hospital_id="clinic", sample_count=1)


def test_flat_vector_round_trips_through_the_spec() -> None:
    weights = {"layer.weight": torch.arange(6.0).view(2, 3), "layer.bias": torch.tensor([6.0, 7.0])}
    spec = WeightSpec.of(weights)
    vector = flatten(weights, spec=spec)
    assert vector.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    again = ModelUpdate.from_flat(vector, spec=spec, hospital_id="general", sample_count=1).weights
    assert all(torch.equal(again[name], weights[name]) for name in weights)
    assert list(unflatten(vector, spec=spec)) == ["layer.weight", "layer.bias"]


@pytest.mark.parametrize("strategy", [FedAvg(), Median(), TrimmedMean(beta=0.2)], ids=lambda s: s.name)
def test_one_bad_update_stops_the_whole_aggregation(strategy) -> None:
    good = [update(f"h{i}") for i in range(3)]
    bad = update("rogue", changes={"layer.weight": torch.full((2, 3), float("nan"))})
    with pytest.raises(InvalidUpdate, match="'rogue'"):
        strategy.aggregate(global_weights=GLOBAL, updates=[*good, bad])
    assert all(torch.count_nonzero(tensor) == 0 for tensor in GLOBAL.values())


def test_two_updates_from_one_hospital_are_refused() -> None:
    with pytest.raises(InvalidUpdate, match="'general' is not its only one"):
        FedAvg().aggregate(global_weights=GLOBAL, updates=[update("general"), update("general")])


def test_no_updates_is_refused() -> None:
    with pytest.raises(InvalidUpdate) as caught:
        FedAvg().aggregate(global_weights=GLOBAL, updates=[])
    assert caught.value.code == "no_updates"
