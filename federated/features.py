"""The demo task's features, read from FHIR: the 30 Breast Cancer Wisconsin (Diagnostic) measurements as
laboratory Observations coded under `urn:healthhash:wdbc`, and the label as a Condition coded `malignant`
or `benign` under the same system (as demo/charts.py writes a chart). Django-free: a hospital worker
uses it.

Labels: malignant = 1, benign = 0 (the positive class is the disease; scikit-learn's table has the
opposite, target 0 = malignant).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WDBC_SYSTEM = "urn:healthhash:wdbc"
_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
# scikit-learn's `load_breast_cancer().feature_names`, in its order (a test holds them equal).
FEATURE_NAMES: tuple[str, ...] = (
    *(f"mean {m}" for m in _MEASURES),
    *(f"{m} error" for m in _MEASURES),
    *(f"worst {m}" for m in _MEASURES),
)
N_FEATURES = len(FEATURE_NAMES)
LABELS = {"benign": 0, "malignant": 1}
# In a contribution, this index names the label rather than a feature.
LABEL = -1


def feature_code(name: str) -> str:
    """`mean radius` -> `mean-radius`: the Observation code under WDBC_SYSTEM."""
    return name.replace(" ", "-")


_INDEX_OF_CODE = {feature_code(name): index for index, name in enumerate(FEATURE_NAMES)}


def contribution_of(resource: Mapping[str, Any]) -> tuple[int, float] | None:
    """What one FHIR resource adds to its patient's row: `(feature index, value)` for a WDBC
    Observation, `(LABEL, 0 or 1)` for a WDBC Condition, None for anything else."""
    kind = resource.get("resourceType")
    if kind == "Observation":
        code = _wdbc_code(resource)
        index = _INDEX_OF_CODE.get(code) if code else None
        value = (resource.get("valueQuantity") or {}).get("value")
        if index is None or not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return index, float(value)
    if kind == "Condition":
        label = LABELS.get(_wdbc_code(resource) or "")
        return None if label is None else (LABEL, float(label))
    return None


def _wdbc_code(resource: Mapping[str, Any]) -> str | None:
    for coding in (resource.get("code") or {}).get("coding") or ():
        if coding.get("system") == WDBC_SYSTEM:
            return coding.get("code")
    return None
