"""The demo task's models as torch.nn modules, built from a training plan's JSON spec (pure torch, no Django:
the hospital worker builds them too).

A spec names the model: `{"name": "logistic"}` (Linear(30, 1)) or `{"name": "mlp", "hidden": [32, 16]}`
(30 -> 32 -> 16 -> 1, ReLU between; the list gives each hidden layer's width, its length the depth).
Every model outputs one logit per row (positive class: malignant). `build_model(spec=, seed=)` is
deterministic in the seed and leaves the caller's global RNG untouched.

Feature scaling. The 30 WDBC features span five orders of magnitude (area ~ 10³, smoothness ~ 10⁻¹), so the
model starts with a `Standardizer`: fixed buffers `mean` and `scale`, (x - mean) / scale. Its values are
computed federatedly, never from a public summary and never per hospital alone:

1. each hospital computes `FeatureMoments.of(X_train)` (row count, per-feature mean and sum of squared
   deviations: 61 numbers, aggregates only, no rows) and sends them;
2. the coordinator pools them exactly (`FeatureMoments.pooled`, Chan et al.'s parallel update) into the
   moments of the union, and `initial_weights(..., moments=pooled)` puts mean/std into model version 0;
3. every later round carries them inside the global weights (buffers are in the state_dict), so all
   hospitals and every prediction scale the same way, and provenance covers the scaling too.

Per-hospital standardisation would be simpler but wrong under label skew: a hospital with mostly malignant
cases would centre "large tumour" at zero. Caveat: the moments are not covered by DP-SGD's epsilon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

N_FEATURES = 30  # federated.features.N_FEATURES; a test holds them equal (features.py is not mine)
MODEL_NAMES = ("logistic", "mlp")
_MAX_HIDDEN_LAYERS = 8
_MAX_WIDTH = 4096
# A feature whose pooled spread is below this is constant: scaled by 1, not blown up by 1/~0.
_MIN_SCALE = 1e-8


class InvalidPlan(ValueError):
    """A training-plan value that cannot be used: model spec, weights, hyper-parameter or DP setting.
    `field` names the JSON path (e.g. `model.hidden.0`); the server maps this to its 400 error shape
    (healthhash.errors needs Django, the hospital worker has none)."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class ModelSpec:
    """A validated model spec: `name` in MODEL_NAMES, `hidden` widths (empty for logistic)."""

    name: str
    hidden: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ModelSpec:
        if not isinstance(spec, Mapping):
            raise InvalidPlan("The model must be an object with a name.", field="model")
        name = spec.get("name")
        if name not in MODEL_NAMES:
            raise InvalidPlan(f"Unknown model {name!r}; known: {', '.join(MODEL_NAMES)}.", field="model.name")
        allowed = {"name"} if name == "logistic" else {"name", "hidden"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise InvalidPlan(f"{name} has no parameter {unknown[0]!r}.", field=f"model.{unknown[0]}")
        if name == "logistic":
            return cls(name=name)
        return cls(name=name, hidden=_hidden_widths(spec.get("hidden", [32])))

    def as_json(self) -> dict[str, Any]:
        return (
            {"name": self.name}
            if self.name == "logistic"
            else {"name": self.name, "hidden": list(self.hidden)}
        )


def _hidden_widths(hidden: Any) -> tuple[int, ...]:
    if not isinstance(hidden, list | tuple) or not 1 <= len(hidden) <= _MAX_HIDDEN_LAYERS:
        raise InvalidPlan(
            f"hidden must be a list of 1 to {_MAX_HIDDEN_LAYERS} layer widths; got {hidden!r}.",
            field="model.hidden",
        )
    for index, width in enumerate(hidden):
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= _MAX_WIDTH:
            raise InvalidPlan(
                f"Each hidden width must be a whole number in [1, {_MAX_WIDTH}]; got {width!r}.",
                field=f"model.hidden.{index}",
            )
    return tuple(hidden)


@dataclass(frozen=True)
class FeatureMoments:
    """Row count, per-feature mean and M2 (sum of squared deviations from the mean), float64."""

    count: int
    mean: Tensor
    m2: Tensor

    @classmethod
    def of(cls, X: Tensor) -> FeatureMoments:
        """The moments of one hospital's rows (what it shares: aggregates, not rows)."""
        rows = X.to(torch.float64)
        if rows.shape[0] == 0:
            return cls(count=0, mean=torch.zeros(rows.shape[1:]), m2=torch.zeros(rows.shape[1:]))
        mean = rows.mean(dim=0)
        return cls(count=rows.shape[0], mean=mean, m2=(rows - mean).square().sum(dim=0))

    @classmethod
    def pooled(cls, parts: Sequence[FeatureMoments]) -> FeatureMoments:
        """The exact moments of the union of the parts' rows (Chan, Golub & LeVeque's pairwise update)."""
        total = parts[0]
        for part in parts[1:]:
            count = total.count + part.count
            if count == 0:
                continue
            delta = part.mean - total.mean
            mean = total.mean + delta * (part.count / count)
            m2 = total.m2 + part.m2 + delta.square() * (total.count * part.count / count)
            total = FeatureMoments(count=count, mean=mean, m2=m2)
        return total

    @property
    def std(self) -> Tensor:
        """Population standard deviation; 1 where a feature is constant (or there are no rows)."""
        std = (self.m2 / max(self.count, 1)).sqrt()
        return torch.where(std < _MIN_SCALE, torch.ones_like(std), std)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureMoments:
        count = data.get("count")
        mean = torch.tensor(data.get("mean", []), dtype=torch.float64)
        m2 = torch.tensor(data.get("m2", []), dtype=torch.float64)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidPlan(f"count must be a whole number >= 0; got {count!r}.", field="moments.count")
        for name, values in (("mean", mean), ("m2", m2)):
            if values.shape != (N_FEATURES,) or not bool(values.isfinite().all()):
                raise InvalidPlan(f"{name} must be {N_FEATURES} finite numbers.", field=f"moments.{name}")
        if bool((m2 < 0).any()):
            raise InvalidPlan("m2 must not be negative.", field="moments.m2")
        return cls(count=count, mean=mean, m2=m2)


class Standardizer(nn.Module):
    """(x - mean) / scale with fixed buffers (no parameters: nothing trains or clips them)."""

    mean: Tensor
    scale: Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.scale

    def set_moments(self, moments: FeatureMoments) -> None:
        if moments.mean.shape != self.mean.shape:
            raise InvalidPlan(
                f"The moments cover {tuple(moments.mean.shape)} features; "
                f"the model reads {tuple(self.mean.shape)}.",
                field="moments.mean",
            )
        with torch.no_grad():
            self.mean.copy_(moments.mean.to(self.mean.dtype))
            self.scale.copy_(moments.std.to(self.scale.dtype))


class TabularClassifier(nn.Module):
    """Standardizer, then Linear/ReLU layers to one logit per row. Output shape [n]."""

    def __init__(self, spec: ModelSpec, *, features: int = N_FEATURES) -> None:
        super().__init__()
        self.spec = spec
        self.standardize = Standardizer(features)
        layers: list[nn.Module] = []
        width = features
        for hidden in spec.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.standardize(x)).squeeze(-1)


def build_model(*, spec: Mapping[str, Any] | ModelSpec, seed: int) -> TabularClassifier:
    """The spec's model with weights initialised from `seed` (same seed, same weights), scaling identity."""
    model_spec = spec if isinstance(spec, ModelSpec) else ModelSpec.from_json(spec)
    with torch.random.fork_rng(devices=[]):  # a seeded init must not reseed the caller's RNG
        torch.manual_seed(seed)
        return TabularClassifier(model_spec)


def initial_weights(
    *, spec: Mapping[str, Any] | ModelSpec, seed: int, moments: FeatureMoments | None = None
) -> dict[str, Tensor]:
    """Model version 0: seeded weights and, when given, the pooled feature moments as its scaling."""
    model = build_model(spec=spec, seed=seed)
    if moments is not None:
        model.standardize.set_moments(moments)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def load_model(*, spec: Mapping[str, Any] | ModelSpec, weights: Mapping[str, Tensor]) -> TabularClassifier:
    """The spec's model holding `weights` (a state_dict); InvalidPlan if they do not fit it."""
    model = build_model(spec=spec, seed=0)
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unknown = sorted(set(weights) - set(expected))
    if missing or unknown:
        name = missing[0] if missing else unknown[0]
        problem = "lack" if missing else "have an unknown"
        raise InvalidPlan(
            f"The weights {problem} parameter {name!r} for this model.", field=f"weights.{name}"
        )
    for name, tensor in expected.items():
        given = weights[name]
        if tuple(given.shape) != tuple(tensor.shape):
            raise InvalidPlan(
                f"{name!r} has shape {tuple(given.shape)}; the model's is {tuple(tensor.shape)}.",
                field=f"weights.{name}",
            )
        if not bool(given.isfinite().all()):
            raise InvalidPlan(f"{name!r} holds non-finite values.", field=f"weights.{name}")
    model.load_state_dict({name: tensor.detach() for name, tensor in weights.items()})
    return model
