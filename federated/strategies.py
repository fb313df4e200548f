"""Aggregation strategies: small objects behind one interface, configured by keyword (Flower's shape).

`configure_round(round_number=, global_weights=)` gives the JSON-able settings a hospital worker needs
for a round; `aggregate(global_weights=, updates=)` validates every update against the global model
(`federated.updates.stack_updates`), combines them on one stacked (n, d) matrix and returns the new
global weights with an `AggregationReport`. No strategy loops over parameters or elements.

A job names its strategy as JSON, e.g. `{"name": "trimmed_mean", "beta": 0.2}`; `strategy_from_spec`
builds it and refuses unknown names and bad parameters with a 400 naming the field, and
`Strategy.spec()` writes it back in the same form.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from federated.updates import ModelUpdate, Weights, WeightSpec, flatten, stack_updates, unflatten
from healthhash.errors import DomainError

Scorer = Callable[[Weights], float]


class InvalidStrategy(DomainError):
    """A strategy name or parameter that cannot be used; `field` is `strategy.<parameter>`."""

    code = "invalid_strategy"


@dataclass(frozen=True)
class AggregationReport:
    """What one aggregation did, per hospital; JSON-able through `as_dict`."""

    strategy: str
    hospital_ids: tuple[str, ...]
    sample_count: int
    # Each hospital's share of the new model when it is a weighted average (empty for the
    # coordinate-wise rules, where no single share exists).
    coefficients: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # trust scores as used (clamped)
    kept_global: bool = False  # no update was trusted: the global model stands as it was
    shift_l2: float = 0.0  # L2 distance from the old global weights to the new ones

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Aggregation:
    weights: dict[str, Tensor]
    report: AggregationReport


class _Combined(NamedTuple):
    vector: Tensor
    coefficients: Tensor | None = None
    scores: Tensor | None = None
    kept_global: bool = False


class Strategy(ABC):
    """One aggregation rule. Subclasses set `name` and `parameters` and implement `_combine`."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]] = ()  # the keywords a job's JSON spec may set

    def configure_round(self, *, round_number: int, global_weights: Weights) -> dict[str, Any]:
        """Settings for the hospital workers' local training in this round (JSON-able)."""
        return {}

    def aggregate(self, *, global_weights: Weights, updates: Sequence[ModelUpdate]) -> Aggregation:
        """The new global weights from this round's updates; raises `InvalidUpdate` before any
        arithmetic if one update does not fit the global model."""
        spec = WeightSpec.of(global_weights)
        with torch.no_grad():
            matrix = stack_updates(updates, spec=spec)
            global_vector = flatten(global_weights, spec=spec)
            combined = self._combine(matrix, updates=updates, global_vector=global_vector)
            shift = float(torch.linalg.vector_norm(combined.vector - global_vector))
        ids = tuple(update.hospital_id for update in updates)
        report = AggregationReport(
            strategy=self.name,
            hospital_ids=ids,
            sample_count=sum(update.sample_count for update in updates),
            coefficients=_per_hospital(ids, combined.coefficients),
            scores=_per_hospital(ids, combined.scores),
            kept_global=combined.kept_global,
            shift_l2=shift,
        )
        return Aggregation(weights=unflatten(combined.vector, spec=spec), report=report)

    def spec(self) -> dict[str, Any]:
        """This strategy as a job stores it: `{"name": ..., **parameters}`."""
        return {"name": self.name} | {key: getattr(self, key) for key in self.parameters}

    @abstractmethod
    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        """Row i of `matrix` is `updates[i]`, already validated."""


class FedAvg(Strategy):
    """FedAvg (McMahan et al. 2017): M = Σ_i |D_i| / Σ_j |D_j| · W_i, one matrix-vector product."""

    name = "fedavg"

    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        coefficients = _sample_shares(updates)
        return _Combined(vector=coefficients.to(matrix.dtype) @ matrix, coefficients=coefficients)


class FedProx(FedAvg):
    """FedProx (Li et al. 2020): aggregation as FedAvg; each worker adds the proximal term
    mu/2 · ||w - w_global||² to its local loss (`federated.proximal.ProximalTerm`), which keeps
    hospitals with skewed data near the global model."""

    name = "fedprox"
    parameters = ("mu",)

    def __init__(self, *, mu: float = 0.01) -> None:
        self.mu = _real(mu, name="mu", low=0.0, high=math.inf)

    def configure_round(self, *, round_number: int, global_weights: Weights) -> dict[str, Any]:
        return {"proximal_mu": self.mu}


class Median(Strategy):
    """Coordinate-wise median (Yin et al. 2018), unweighted: a self-reported sample count buys no say.
    With an even number of updates, the mean of the two middle values (torch.median gives the lower)."""

    name = "median"

    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        count = matrix.shape[0]
        ordered = _sort_rows(matrix)
        return _Combined(vector=ordered[(count - 1) // 2 : count // 2 + 1].mean(dim=0))


class TrimmedMean(Strategy):
    """Coordinate-wise trimmed mean (Yin et al. 2018), unweighted: per coordinate, drop the
    floor(beta · n) largest and smallest values and average the rest. beta in [0, 0.5)."""

    name = "trimmed_mean"
    parameters = ("beta",)

    def __init__(self, *, beta: float = 0.1) -> None:
        self.beta = _real(beta, name="beta", low=0.0, high=0.5, high_open=True)

    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        count = matrix.shape[0]
        trim = math.floor(self.beta * count)
        if trim == 0:
            return _Combined(vector=matrix.mean(dim=0))
        ordered = _sort_rows(matrix)
        return _Combined(vector=ordered[trim : count - trim].mean(dim=0))


class Krum(Strategy):
    """(Multi-)Krum (Blanchard et al. 2017): score each update by the sum of squared distances to its
    n - f - 2 nearest others (f = `byzantine`), keep the `selected` lowest scores (ties to the earlier
    update) and average those by sample count. Needs n >= 2f + 3 updates."""

    name = "krum"
    parameters = ("byzantine", "selected")

    def __init__(self, *, byzantine: int = 1, selected: int = 1) -> None:
        self.byzantine = _whole(byzantine, name="byzantine", minimum=0)
        self.selected = _whole(selected, name="selected", minimum=1)

    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        count = matrix.shape[0]
        if count < 2 * self.byzantine + 3 or self.selected > count:
            raise InvalidStrategy(
                f"Krum with byzantine={self.byzantine}, selected={self.selected} needs at least "
                f"{max(2 * self.byzantine + 3, self.selected)} updates; this round has {count}.",
                field="strategy.byzantine",
                code="too_few_updates",
            )
        distances = torch.cdist(matrix, matrix, compute_mode="donot_use_mm_for_euclid_dist").square()
        # Sorted row i starts with its own zero distance; the next n - f - 2 are its nearest others.
        scores = distances.sort(dim=1).values[:, 1 : count - self.byzantine - 1].sum(dim=1)
        chosen = torch.argsort(scores, stable=True)[: self.selected]
        mask = torch.zeros(count, dtype=torch.bool)
        mask[chosen] = True
        shares = torch.where(mask, _sample_counts(updates), 0.0)
        coefficients = shares / shares.sum()
        return _Combined(vector=coefficients.to(matrix.dtype) @ matrix, coefficients=coefficients)


class TrustScore(Strategy):
    """Validation-based trust weighting (the HealthHash paper's rule, made exact here).

    Each update's weights are scored by `score(weights)`, the model's quality on a validation set the
    coordinator holds, in [0, 1] (accuracy, or e.g. exp(-loss) for a loss). The rule:

    1. s_i = score(W_i), clamped to [0, 1]; a NaN score counts as 0;
    2. s_i = 0 where s_i < `min_score` (an update below the bar gets no say);
    3. t_i = s_i / Σ_j s_j — the trust weights, in [0, 1], summing to 1;
    4. M = Σ_i t_i · W_i. Sample counts are not used: trust, not volume, decides.

    If every s_i is 0 no update is trusted, and the global model stands unchanged (report:
    `kept_global`), rather than averaging updates that all failed validation.
    """

    name = "trust_score"
    parameters = ("min_score",)

    def __init__(self, *, min_score: float = 0.0, score: Scorer | None = None) -> None:
        self.min_score = _real(min_score, name="min_score", low=0.0, high=1.0, high_open=True)
        self.score = score

    def _combine(self, matrix: Tensor, *, updates: Sequence[ModelUpdate], global_vector: Tensor) -> _Combined:
        if self.score is None:
            raise InvalidStrategy(
                "trust_score needs a validation scorer to aggregate.", field="strategy.score"
            )
        raw = torch.tensor([float(self.score(update.weights)) for update in updates], dtype=torch.float64)
        scores = raw.nan_to_num(nan=0.0).clamp(0.0, 1.0)
        scores = torch.where(scores < self.min_score, 0.0, scores)
        total = scores.sum()
        if total == 0:
            return _Combined(
                vector=global_vector.clone(), coefficients=scores, scores=scores, kept_global=True
            )
        coefficients = scores / total
        return _Combined(
            vector=coefficients.to(matrix.dtype) @ matrix, coefficients=coefficients, scores=scores
        )


STRATEGIES: Mapping[str, type[Strategy]] = MappingProxyType(
    {strategy.name: strategy for strategy in (FedAvg, FedProx, Median, TrimmedMean, TrustScore, Krum)}
)


def strategy_from_spec(spec: Mapping[str, Any], *, score: Scorer | None = None) -> Strategy:
    """The strategy a job's JSON spec names, its parameters validated. `score` is the validation scorer
    for `trust_score` (it is code, so it never comes from JSON)."""
    if not isinstance(spec, Mapping):
        raise InvalidStrategy("The strategy must be an object with a name.", field="strategy")
    name = spec.get("name")
    if not isinstance(name, str) or name not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise InvalidStrategy(f"Unknown strategy {name!r}; known: {known}.", field="strategy.name")
    strategy_class = STRATEGIES[name]
    params = {key: value for key, value in spec.items() if key != "name"}
    unknown = sorted(set(params) - set(strategy_class.parameters))
    if unknown:
        allowed = ", ".join(strategy_class.parameters) or "none"
        raise InvalidStrategy(
            f"{name} has no parameter {unknown[0]!r} (parameters: {allowed}).", field=f"strategy.{unknown[0]}"
        )
    if strategy_class is TrustScore:
        return TrustScore(**params, score=score)
    return strategy_class(**params)


def _sort_rows(matrix: Tensor) -> Tensor:
    """`matrix` sorted along dim 0 (each coordinate across the updates), in place.

    torch.sort / torch.median over dim 0 pay a per-column cost (262,144 columns of 10 values: ~50 ms);
    for the few updates of a round an odd-even transposition network of whole-row minimum/maximum is
    4-8x faster and exact. Its n²/2 comparators loop over pairs of updates, never over elements.
    """
    count = matrix.shape[0]
    if count > _NETWORK_MAX_ROWS:
        return matrix.sort(dim=0).values
    spare = torch.empty_like(matrix[0])
    for layer in range(count):
        for upper in range(layer % 2, count - 1, 2):
            low, high = matrix[upper], matrix[upper + 1]
            torch.minimum(low, high, out=spare)
            torch.maximum(low, high, out=high)
            low.copy_(spare)
    return matrix


_NETWORK_MAX_ROWS = 32  # measured 4-8x faster than torch.sort up to here; n²/2 row ops grow past it


def _sample_counts(updates: Sequence[ModelUpdate]) -> Tensor:
    # float64: counts are exact up to 2**53, and the shares are computed before casting down.
    return torch.tensor([update.sample_count for update in updates], dtype=torch.float64)


def _sample_shares(updates: Sequence[ModelUpdate]) -> Tensor:
    counts = _sample_counts(updates)
    return counts / counts.sum()


def _per_hospital(ids: tuple[str, ...], values: Tensor | None) -> dict[str, float]:
    return {} if values is None else dict(zip(ids, values.tolist(), strict=True))


def _real(value: Any, *, name: str, low: float, high: float, high_open: bool = False) -> float:
    """A finite real in [low, high] (or [low, high)), else a 400 naming `strategy.<name>`."""
    inside = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    if inside:
        inside = low <= value < high if high_open else low <= value <= high
        inside = inside and math.isfinite(value)
    if not inside:
        bound = ")" if high_open else "]"
        raise InvalidStrategy(
            f"{name} must be a finite number in [{low}, {high}{bound}; got {value!r}.",
            field=f"strategy.{name}",
        )
    return float(value)


def _whole(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidStrategy(
            f"{name} must be a whole number >= {minimum}; got {value!r}.", field=f"strategy.{name}"
        )
    return value
