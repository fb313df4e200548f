"""How every benchmark command reports: a table with each figure against its target, then one JSON line."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Target = tuple[str, float]  # ("<=" | ">=", bound)


def report_figures(
    write: Callable[[str], Any], figures: Mapping[str, Any], targets: Mapping[str, Target]
) -> None:
    width = max(len(name) for name in figures) + 2
    write(f"{'figure':{width}} {'value':>14}  target")
    for name, value in figures.items():
        target = targets.get(name)
        verdict = ""
        if target is not None and isinstance(value, int | float):
            op, bound = target
            met = value <= bound if op == "<=" else value >= bound
            verdict = f"{op} {bound:,}  {'ok' if met else 'MISSED'}"
        shown = f"{value:,}" if isinstance(value, int | float) else str(value)
        write(f"{name:{width}} {shown:>14}  {verdict}")
    write(json.dumps(figures))
