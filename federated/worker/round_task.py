"""The vocabulary of a local round at the hospital worker: the task it is given (`RoundTask`, parsed from
the coordinator's kwargs), how it ends (`RoundOutcome`), why it refuses (`Reason`, `Refused`) and which
failures a retry may cure (`TRANSIENT_ERRORS`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from federated.worker.chain import ChainDown
from federated.worker.client import ApiUnavailable

KINDS = ("moments", "train")


class Reason:
    """The refusal codes this worker sends (privacy refusals carry the ledger's own codes)."""

    PLAN_MISMATCH = "plan_mismatch"
    PLAN_UNSUPPORTED = "plan_unsupported"
    PLAN_NOT_APPROVED = "plan_not_approved"
    NO_CONSENTED_RECORDS = "no_consented_records"
    RELEASE_BROKEN = "release_broken"
    GLOBAL_WEIGHTS_INVALID = "global_weights_invalid"
    INVALID_PLAN = "invalid_plan"
    WORKER_ERROR = "worker_error"


class BadTask(ValueError):
    """The task's arguments are not a round task for this worker (not retried, not answered)."""


class StoreDown(Exception):
    """The content store could not be used (node down, I/O error): try again later."""


class Refused(Exception):
    """This worker will not take part in the round; `reason` is the code the server records."""

    def __init__(self, reason: str, detail: str, *, epsilon: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.epsilon = epsilon


# What a retry may cure.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ApiUnavailable, ChainDown, StoreDown)


@dataclass(frozen=True)
class GlobalWeightsRef:
    cid: str
    sha256: str  # "0x" + hex


@dataclass(frozen=True)
class RoundTask:
    """The coordinator's kwargs of `federated.worker.local_round`, checked."""

    job_id: str
    round_number: int
    kind: str
    hospital_id: str
    plan: dict[str, Any]
    plan_hash: str
    pinned_block: int
    global_weights: GlobalWeightsRef | None
    round_config: dict[str, Any]
    seed: int
    deadline: int

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RoundTask:
        try:
            glob = kwargs.get("global")
            task = cls(
                job_id=_hex32(kwargs["job_id"], "job_id"),
                round_number=_whole(kwargs["round"], "round"),
                kind=str(kwargs["kind"]),
                hospital_id=_hex32(kwargs["hospital_id"], "hospital_id"),
                plan=dict(kwargs["plan"]),
                plan_hash=_hex32(kwargs["plan_hash"], "plan_hash"),
                pinned_block=_whole(kwargs["pinned_block"], "pinned_block"),
                global_weights=None
                if glob is None
                else GlobalWeightsRef(cid=str(glob["cid"]), sha256=_hex32(glob["sha256"], "global.sha256")),
                round_config=dict(kwargs.get("round_config") or {}),
                seed=_whole(kwargs["seed"], "seed"),
                deadline=_whole(kwargs["deadline"], "deadline"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadTask(f"not a local round task: {exc}") from exc
        if task.kind not in KINDS:
            raise BadTask(f"unknown round kind {task.kind!r}")
        if task.kind == "train" and task.global_weights is None:
            raise BadTask("a train round needs the global weights")
        return task

    @property
    def ledger_key(self) -> str:
        return f"{self.job_id}/round-{self.round_number}"


@dataclass(frozen=True)
class RoundOutcome:
    """How the task ended: accepted, duplicate, conflict (an update of ours already holds the round),
    moments_sent, refused (we said no, `reason`), closed (the server said no), or expired."""

    status: str
    reason: str = ""
    detail: str = ""
    epsilon: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hex32(value: Any, name: str) -> str:
    text = str(value).lower()
    if not (text.startswith("0x") and len(text) == 66):
        raise ValueError(f"{name} must be 0x + 64 hex digits")
    int(text, 16)
    return text


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    return value
