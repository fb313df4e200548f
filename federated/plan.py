"""A training plan's content hash: what each participating hospital's admin approves on chain.

The plan is what runs on a hospital's data: the task and its feature extraction, the model, the strategy
(FedProx's proximal term runs at the hospital), the local hyper-parameters, the number of rounds (with DP,
rounds x epochs is what the hospital's privacy budget pays) and the DP settings. Quorum and round timeout
are the coordinator's scheduling and are left out: changing them asks no hospital for anything new.

`plan_hash(job)` = "0x" + sha256 of the plan's canonical JSON: keys sorted, no whitespace, UTF-8, no NaN
(Python's float repr is the shortest round-tripping one, so it is stable). Every member is always present
(`dp` is null without DP), so two jobs with the same plan hash the same whatever order they were given in.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federated.models import TrainingJob

PLAN_FORMAT = 1
# Bump when federated/features.py changes how records become features: approvals of the old plans lapse.
FEATURE_EXTRACTION_VERSION = "wdbc-fhir-observations/1"


def plan_document(job: TrainingJob) -> dict[str, Any]:
    """The members of `job`'s training plan, as hashed."""
    return {
        "plan_format": PLAN_FORMAT,
        "task": job.task,
        "feature_extraction": FEATURE_EXTRACTION_VERSION,
        "model": job.model_spec,
        "strategy": job.strategy_spec,
        "hyper_parameters": {
            "local_epochs": job.local_epochs,
            "batch_size": job.batch_size,
            "lr": float(job.lr),
            "rounds": job.rounds,
        },
        "dp": job.dp,
    }


def canonical_json(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def plan_hash(job: TrainingJob) -> str:
    """ "0x" + sha256 hex of the canonical JSON of `job`'s plan (the bytes32 the hospitals approve)."""
    return "0x" + hashlib.sha256(canonical_json(plan_document(job))).hexdigest()
