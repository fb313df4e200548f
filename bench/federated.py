"""Federated benchmark figures (the aggregation part of issue 14's `bench_federated`; the command comes
with the rest of the training work).

`aggregate_gbps`: a whole `FedAvg.aggregate` call over 10 updates of 1 MiB each (262,144 float32 values
in two tensors, like a layer's weight and bias) — validation, flattening into the stacked matrix, the
weighted sum and unflattening — as update bytes read (10 MiB) per second of wall time, median of the
repeats. The same for the coordinate-wise median and trimmed mean, and the bare weighted sum over the
already stacked matrix, for scale.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from federated.strategies import FedAvg, Median, Strategy, TrimmedMean
from federated.updates import ModelUpdate, WeightSpec, stack_updates

UPDATE_COUNT = 10
LAYOUT = {"fc1.weight": (1024, 255), "fc1.bias": (1024,)}  # 261,120 + 1,024 = 262,144 values: 1 MiB


def measure_aggregate_gbps(*, repeats: int = 20, threads: int | None = 1) -> dict[str, float]:
    """GB/s (10^9 bytes) of update bytes read per second, for each strategy's whole `aggregate` call.

    `threads` pins torch's intra-op threads for the measurement (restored after); None keeps torch's
    default. One thread is the default because these memory-bound passes gain nothing from a second
    thread on a shared 2-core machine and lose a lot when the other core is busy (measured: FedAvg
    3.5-6.4 GB/s on one thread, 0.1-0.9 GB/s on two under load).
    """
    global_weights, updates = _round(seed=0)
    update_bytes = sum(update_nbytes(update) for update in updates)
    spec = WeightSpec.of(global_weights)
    matrix = stack_updates(updates, spec=spec)
    shares = torch.full((len(updates),), 1 / len(updates))

    def aggregate(strategy: Strategy) -> Callable[[], object]:
        return lambda: strategy.aggregate(global_weights=global_weights, updates=updates)

    runs = {
        "aggregate_gbps": aggregate(FedAvg()),
        "aggregate_median_gbps": aggregate(Median()),
        "aggregate_trimmed_mean_gbps": aggregate(TrimmedMean(beta=0.2)),
        "weighted_sum_gbps": lambda: shares @ matrix,
    }
    with _torch_threads(threads):
        return {
            name: round(update_bytes / _median_seconds(run, repeats) / 1e9, 2) for name, run in runs.items()
        }


def update_nbytes(update: ModelUpdate) -> int:
    return sum(tensor.nbytes for tensor in update.weights.values())


def _round(*, seed: int) -> tuple[dict[str, torch.Tensor], list[ModelUpdate]]:
    generator = torch.Generator().manual_seed(seed)
    global_weights = {name: torch.randn(shape, generator=generator) for name, shape in LAYOUT.items()}
    updates = [
        ModelUpdate(
            hospital_id=f"hospital-{index}",
            weights={name: torch.randn(shape, generator=generator) for name, shape in LAYOUT.items()},
            sample_count=100 + index,
        )
        for index in range(UPDATE_COUNT)
    ]
    return global_weights, updates


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-call allocations and dispatch caches
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
