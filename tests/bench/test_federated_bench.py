"""The aggregation benchmark runs and reports every figure as a positive finite GB/s (a smoke test: no
speed is asserted; `aggregate_gbps` is read against its target by people)."""

from __future__ import annotations

import math

from bench.federated import measure_aggregate_gbps


def test_aggregate_benchmark_reports_positive_finite_figures() -> None:
    figures = measure_aggregate_gbps(repeats=2)
    assert set(figures) == {
        "aggregate_gbps",
        "aggregate_median_gbps",
        "aggregate_trimmed_mean_gbps",
        "weighted_sum_gbps",
    }
    assert all(math.isfinite(value) and value > 0 for value in figures.values())
