"""A round's new global model, computed: pooled feature moments (round 0) or the job's strategy over the
accepted updates (rounds 1..N), stored content-addressed and evaluated on the held-out rows.

Pure computation plus the content store: no database writes here, so federated/rounds.py runs it outside
any transaction and then writes its result once. What goes on chain for a model version:
- `metrics_hash` = "0x" + SHA-256 of the canonical JSON (federated.plan.canonical_json) of the version's
  `metrics` as stored (NaN written as null);
- `updates_root` = the root of OpenZeppelin's StandardMerkleTree over the averaged updates' ids
  (`contracts.messages.training_update_id`), leaf type bytes32, built as federated/patient_set.py builds
  its tree; zero for version 0, which averages no update (its moments never go on chain).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from torch import Tensor

from ehr import store
from federated import networks, testset, weights_format
from federated.metrics import SplitMetrics, evaluate
from federated.plan import canonical_json
from federated.strategies import AggregationReport, strategy_from_spec
from federated.updates import ModelUpdate, Weights
from healthhash.errors import DomainError

ZERO_ROOT = "0x" + "00" * 32


class VersionWeightsBroken(DomainError):
    """A stored model version's bytes do not hash to its recorded weights hash."""

    code = "version_weights_broken"
    status_code = 500


@dataclass(frozen=True)
class UpdateInput:
    """One accepted update as the aggregation needs it (read from its RoundUpdate row)."""

    hospital_slug: str
    cid: str
    weights_hash: str
    sample_count: int


@dataclass(frozen=True)
class ComputedVersion:
    weights_bytes: bytes
    cid: str
    weights_hash: str
    metrics: dict[str, Any]
    report: dict[str, Any]
    aggregation_s: float


@lru_cache(maxsize=16)
def _stored_bytes(cid: str, weights_hash: str) -> bytes:
    data = store.cat(cid)
    if weights_format.sha256_hex(data) != weights_hash:
        raise VersionWeightsBroken(f"the stored weights at {cid} do not hash to {weights_hash}")
    return data


def load_weights(*, cid: str, weights_hash: str) -> dict[str, Tensor]:
    """Weights stored at `cid`, checked against `weights_hash` (recent ones cached in this process)."""
    return weights_format.load(_stored_bytes(cid, weights_hash))


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as null (PostgreSQL's jsonb, and canonical JSON, refuse them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def metrics_hash(metrics: Mapping[str, Any]) -> str:
    return "0x" + hashlib.sha256(canonical_json(json_safe(metrics))).hexdigest()


def updates_root(update_ids: Iterable[str]) -> str:
    """OpenZeppelin StandardMerkleTree.of([[id], ...], ["bytes32"]).root over 0x-hex update ids."""
    leaves = sorted({keccak(keccak(abi_encode(["bytes32"], [bytes.fromhex(i[2:])]))) for i in update_ids})
    if not leaves:
        return ZERO_ROOT
    size = 2 * len(leaves) - 1
    nodes = [b""] * size
    for index, leaf in enumerate(leaves):
        nodes[size - 1 - index] = leaf
    for index in range(size - 1 - len(leaves), -1, -1):
        left, right = nodes[2 * index + 1], nodes[2 * index + 2]
        nodes[index] = keccak(left + right if left < right else right + left)
    return "0x" + nodes[0].hex()


def _is_scored(strategy_spec: Mapping[str, Any]) -> bool:
    return strategy_spec.get("name") == "trust_score"


def evaluate_version(
    *, model_spec: Mapping[str, Any], strategy_spec: Mapping[str, Any], weights: Weights
) -> SplitMetrics:
    """The weights' metrics on the held-out rows a job of this strategy is graded on."""
    split = testset.evaluation_split(scored=_is_scored(strategy_spec))
    model = networks.load_model(spec=model_spec, weights=weights)
    return evaluate(model, X=split.X, y=split.y)


def _scorer(model_spec: Mapping[str, Any]) -> Any:
    """trust_score's validation scorer: accuracy on the held-out rows set aside for scoring."""
    split = testset.scoring_split()

    def score(weights: Weights) -> float:
        model = networks.load_model(spec=model_spec, weights=weights)
        return evaluate(model, X=split.X, y=split.y).accuracy

    return score


def _finish(
    weights: Mapping[str, Tensor],
    *,
    model_spec: Mapping[str, Any],
    strategy_spec: Mapping[str, Any],
    report: dict[str, Any],
    extra_metrics: Mapping[str, Any],
    started: float,
) -> ComputedVersion:
    data = weights_format.dump(weights)
    aggregation_s = time.perf_counter() - started
    cid = store.add(data)
    test = evaluate_version(model_spec=model_spec, strategy_spec=strategy_spec, weights=weights)
    metrics = json_safe({"test": test.as_dict(), **extra_metrics})
    return ComputedVersion(
        weights_bytes=data,
        cid=cid,
        weights_hash=weights_format.sha256_hex(data),
        metrics=metrics,
        report=json_safe(report),
        aggregation_s=aggregation_s,
    )


def initial_version(
    *, model_spec: Mapping[str, Any], strategy_spec: Mapping[str, Any], seed: int, moments: Sequence[Any]
) -> ComputedVersion:
    """Model version 0: seeded weights scaled by the pooled moments of the hospitals that sent them."""
    started = time.perf_counter()
    parts = [networks.FeatureMoments.from_json(part) for part in moments]
    pooled = networks.FeatureMoments.pooled(parts) if parts else None
    weights = networks.initial_weights(spec=model_spec, seed=seed, moments=pooled)
    count = 0 if pooled is None else pooled.count
    report = {"strategy": "moments", "hospital_count": len(parts), "sample_count": count}
    return _finish(
        weights,
        model_spec=model_spec,
        strategy_spec=strategy_spec,
        report=report,
        extra_metrics={"moments_rows": count},
        started=started,
    )


def aggregated_version(
    *,
    model_spec: Mapping[str, Any],
    strategy_spec: Mapping[str, Any],
    base_weights: Weights,
    updates: Sequence[UpdateInput],
) -> ComputedVersion:
    """The strategy's aggregate of `updates` over `base_weights` (each update's bytes re-checked)."""
    loaded = [
        ModelUpdate(
            hospital_id=update.hospital_slug,
            weights=load_weights(cid=update.cid, weights_hash=update.weights_hash),
            sample_count=update.sample_count,
        )
        for update in updates
    ]
    started = time.perf_counter()
    scored = _is_scored(strategy_spec)
    strategy = strategy_from_spec(strategy_spec, score=_scorer(model_spec) if scored else None)
    aggregation = strategy.aggregate(global_weights=base_weights, updates=loaded)
    report: AggregationReport = aggregation.report
    return _finish(
        aggregation.weights,
        model_spec=model_spec,
        strategy_spec=strategy_spec,
        report=report.as_dict(),
        extra_metrics={},
        started=started,
    )
