"""Model updates as values, and the check every strategy applies before an update touches the global model.

An update is a hospital's locally trained weights: a mapping of parameter name to tensor (a torch
`state_dict`), the number of training samples behind it and the hospital's id. A `WeightSpec` (names,
shapes, dtypes in the global model's order) maps such a mapping to one flat vector and back; updates
are compared to the *global* model's spec, never to each other, so one odd update cannot redefine what
"the right shape" is. Aggregation stacks the updates into one (n, d) matrix (`stack_updates`): one
`torch.cat` of views per update, then whole-matrix arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from healthhash.errors import DomainError

Weights = Mapping[str, Tensor]


class InvalidUpdate(DomainError):
    """An update that must not be aggregated: the detail names the hospital and the problem."""

    code = "invalid_update"


@dataclass(frozen=True)
class WeightSpec:
    """The names, shapes and dtypes of a model's weights, in order: the layout of the flat vector."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[torch.dtype, ...]

    @classmethod
    def of(cls, weights: Weights) -> WeightSpec:
        return cls(
            names=tuple(weights),
            shapes=tuple(tuple(tensor.shape) for tensor in weights.values()),
            dtypes=tuple(tensor.dtype for tensor in weights.values()),
        )

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def numel(self) -> int:
        return sum(self.sizes)

    @property
    def work_dtype(self) -> torch.dtype:
        """float64 when the model holds any float64 weights, else float32 (half types average in float32)."""
        return torch.float64 if torch.float64 in self.dtypes else torch.float32

    def name_at(self, index: int) -> str:
        """The parameter that flat position `index` belongs to."""
        ends = torch.tensor(self.sizes).cumsum(0)
        return self.names[int(torch.searchsorted(ends, index, right=True))]


@dataclass(frozen=True, eq=False)
class ModelUpdate:
    """One hospital's trained weights for one round. Checked against the global model by `validate_update`."""

    hospital_id: str
    weights: Weights
    sample_count: int

    @classmethod
    def from_flat(
        cls, vector: Tensor, *, spec: WeightSpec, hospital_id: str, sample_count: int
    ) -> ModelUpdate:
        """An update from one flat vector laid out by `spec` (the weights are views into `vector`)."""
        if vector.dim() != 1 or vector.numel() != spec.numel:
            raise _refuse(
                hospital_id,
                f"is a vector of shape {tuple(vector.shape)}; the global model has {spec.numel} values",
                field="weights",
            )
        return cls(hospital_id=hospital_id, weights=unflatten(vector, spec=spec), sample_count=sample_count)


def flatten(weights: Weights, *, spec: WeightSpec, out: Tensor | None = None) -> Tensor:
    """`weights` as one vector in `spec`'s order and work dtype (written into `out` when given)."""
    views = [weights[name].reshape(-1) for name in spec.names]  # views: no copy before the one cat
    if out is None:
        out = torch.empty(spec.numel, dtype=spec.work_dtype)
    return torch.cat(views, out=out)


def unflatten(vector: Tensor, *, spec: WeightSpec) -> dict[str, Tensor]:
    """The mapping of name to tensor that `vector` lays out; views when the dtype already matches."""
    chunks = torch.split(vector, list(spec.sizes))
    return {
        name: chunk.view(shape).to(dtype)
        for name, chunk, shape, dtype in zip(spec.names, chunks, spec.shapes, spec.dtypes, strict=True)
    }


def validate_update(update: ModelUpdate, *, global_weights: Weights) -> None:
    """Raise `InvalidUpdate` unless `update` fits the global model: same names and shapes, floating
    point, finite values, a positive whole sample count. For a coordinator that screens each update as it
    arrives; `stack_updates` applies the same checks to a whole round."""
    stack_updates([update], spec=WeightSpec.of(global_weights))


def stack_updates(updates: Sequence[ModelUpdate], *, spec: WeightSpec) -> Tensor:
    """The validated updates as one (n, d) matrix in `spec`'s order: row i is `updates[i]`, flattened once.

    Raises `InvalidUpdate` for the first update that fails a check, naming its hospital, so nothing
    reaches a strategy's arithmetic unless the whole round is sound.
    """
    if not updates:
        raise InvalidUpdate("There are no updates to aggregate.", field="updates", code="no_updates")
    _check_distinct_hospitals(updates)
    for update in updates:
        _check_layout(update, spec=spec)
    matrix = torch.empty(len(updates), spec.numel, dtype=spec.work_dtype)
    for row, update in zip(matrix, updates, strict=True):
        flatten(update.weights, spec=spec, out=row)
    _check_finite(matrix, updates=updates, spec=spec)
    return matrix


def _refuse(hospital_id: str, problem: str, *, field: str) -> InvalidUpdate:
    return InvalidUpdate(f"The update from hospital {hospital_id!r} {problem}.", field=field)


def _check_distinct_hospitals(updates: Sequence[ModelUpdate]) -> None:
    seen: set[str] = set()
    for update in updates:
        if update.hospital_id in seen:  # a second update would double that hospital's say
            raise _refuse(update.hospital_id, "is not its only one this round", field="hospital_id")
        seen.add(update.hospital_id)


def _check_layout(update: ModelUpdate, *, spec: WeightSpec) -> None:
    """Sample count, names, shapes and dtypes: metadata only, so a loop over the names costs nothing."""
    count = update.sample_count
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise _refuse(
            update.hospital_id,
            f"has sample count {count!r}; it must be a whole number > 0",
            field="sample_count",
        )
    missing = [name for name in spec.names if name not in update.weights]
    if missing:
        raise _refuse(update.hospital_id, f"lacks parameter {missing[0]!r}", field=f"weights.{missing[0]}")
    unexpected = sorted(set(update.weights) - set(spec.names))
    if unexpected:
        raise _refuse(
            update.hospital_id, f"has unknown parameter {unexpected[0]!r}", field=f"weights.{unexpected[0]}"
        )
    for name, shape in zip(spec.names, spec.shapes, strict=True):
        tensor = update.weights[name]
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
            raise _refuse(
                update.hospital_id, f"has no floating-point tensor for {name!r}", field=f"weights.{name}"
            )
        if tuple(tensor.shape) != shape:
            raise _refuse(
                update.hospital_id,
                f"has {name!r} of shape {tuple(tensor.shape)}, the global model's is {shape}",
                field=f"weights.{name}",
            )


def _check_finite(matrix: Tensor, *, updates: Sequence[ModelUpdate], spec: WeightSpec) -> None:
    """One pass: a row sum is finite unless the row holds a NaN or an infinity (or overflows the work
    dtype, which no sane weights do); only a failing row is searched for the parameter to name."""
    bad_rows = (~matrix.sum(dim=1).isfinite()).nonzero()
    if not len(bad_rows):
        return
    row = int(bad_rows[0])
    bad_values = (~matrix[row].isfinite()).nonzero()
    if not len(bad_values):
        raise _refuse(updates[row].hospital_id, "has values too large to aggregate", field="weights")
    index = int(bad_values[0])
    kind = "NaN" if bool(matrix[row, index].isnan()) else "infinite"
    name = spec.name_at(index)
    raise _refuse(updates[row].hospital_id, f"has {kind} values in {name!r}", field=f"weights.{name}")
