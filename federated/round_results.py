"""A round's result, written once: the new model version computed from the accepted answers (outside any
transaction: federated/aggregation.py), then in one transaction the ModelVersion, its outbox item, the
stragglers, the round's metrics and timings, and the next round (or the end of the run). A second run, or
one racing it, finds the round no longer aggregating and returns the version that was written.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts import outbox
from contracts.messages import ModelVersion as ChainModelVersion
from contracts.relayer_kinds import TrainingModelVersionItem
from ehr.storage.unixfs import parse_cid
from federated import aggregation
from federated.models import ChainStatus, ModelVersion, RoundUpdate, TrainingJob, TrainingRound
from federated.networks import InvalidPlan
from federated.round_state import advance, fail_round
from healthhash.errors import DomainError, Unavailable

log = logging.getLogger(__name__)


def aggregate_round(*, job: TrainingJob, number: int) -> ModelVersion | None:
    """The round's model version, computed and written once. None while the round is not aggregating
    (still running, or failed); the existing version when it is done already. Transient errors (store,
    database) propagate for the task to retry; any other failure fails the job with its reason."""
    training_round = TrainingRound.objects.select_related("job").get(job=job, number=number)
    job = training_round.job
    if training_round.status == TrainingRound.Status.DONE:
        return ModelVersion.objects.filter(job=job, round=number).first()
    if training_round.status != TrainingRound.Status.AGGREGATING:
        return None
    rows = list(
        RoundUpdate.objects.select_related("hospital")
        .filter(round=training_round, status=RoundUpdate.Status.ACCEPTED)
        .order_by("hospital__slug")
    )
    try:
        computed = _compute(job, training_round, rows)
    except Unavailable:
        raise
    except (DomainError, InvalidPlan) as error:
        with transaction.atomic():
            locked_job = TrainingJob.objects.select_for_update().get(pk=job.pk)
            locked = TrainingRound.objects.select_for_update().get(pk=training_round.pk)
            if locked.status == TrainingRound.Status.AGGREGATING:
                detail = getattr(error, "detail", str(error))
                fail_round(locked_job, locked, reason=f"round {number}: aggregation failed: {detail}")
        return None
    return _write_version(job, training_round, rows, computed)


def _compute(
    job: TrainingJob, training_round: TrainingRound, rows: list[RoundUpdate]
) -> aggregation.ComputedVersion:
    if training_round.kind == TrainingRound.Kind.MOMENTS:
        return aggregation.initial_version(
            model_spec=job.model_spec,
            strategy_spec=job.strategy_spec,
            seed=job.seed,
            moments=[row.moments for row in rows],
        )
    base = ModelVersion.objects.get(job=job, round=training_round.number - 1)
    return aggregation.aggregated_version(
        model_spec=job.model_spec,
        strategy_spec=job.strategy_spec,
        base_weights=aggregation.load_weights(cid=base.cid, weights_hash=base.weights_hash),
        updates=[
            aggregation.UpdateInput(
                hospital_slug=row.hospital.slug,
                cid=row.cid,
                weights_hash=row.weights_hash,
                sample_count=int(row.sample_count or 0),
            )
            for row in rows
        ],
    )


def _write_version(
    job: TrainingJob,
    training_round: TrainingRound,
    rows: list[RoundUpdate],
    computed: aggregation.ComputedVersion,
) -> ModelVersion | None:
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        training_round = TrainingRound.objects.select_for_update().get(pk=training_round.pk)
        if training_round.status != TrainingRound.Status.AGGREGATING:
            return ModelVersion.objects.filter(job=job, round=training_round.number).first()
        metrics = computed.metrics | {"samples": sum(int(row.sample_count or 0) for row in rows)}
        is_train = training_round.kind == TrainingRound.Kind.TRAIN
        root = aggregation.updates_root(row.update_id for row in rows) if is_train else aggregation.ZERO_ROOT
        chain_version = ChainModelVersion(
            job_id=bytes.fromhex(job.job_id[2:]),
            round=training_round.number,
            weights_hash=bytes.fromhex(computed.weights_hash[2:]),
            cid_digest=parse_cid(computed.cid).digest,
            metrics_hash=bytes.fromhex(aggregation.metrics_hash(metrics)[2:]),
            updates_root=bytes.fromhex(root[2:]),
        )
        chain_started = time.perf_counter()
        item = outbox.enqueue(TrainingModelVersionItem(chain_version))
        chain_s = time.perf_counter() - chain_started
        try:
            with transaction.atomic():
                version = ModelVersion.objects.create(
                    job=job,
                    round=training_round.number,
                    cid=computed.cid,
                    weights_hash=computed.weights_hash,
                    metrics=metrics,
                    metrics_hash="0x" + chain_version.metrics_hash.hex(),
                    updates_root=root,
                    report=computed.report,
                    outbox_item=item,
                    chain_status=ChainStatus.QUEUED,
                )
        except IntegrityError:  # written by a run that did not flip the round (cannot happen; be safe)
            return ModelVersion.objects.filter(job=job, round=training_round.number).first()
        version.updates.set(rows)
        stragglers = RoundUpdate.objects.filter(round=training_round, status=RoundUpdate.Status.DISPATCHED)
        straggler_slugs = sorted(stragglers.values_list("hospital__slug", flat=True))
        stragglers.update(status=RoundUpdate.Status.STRAGGLER)
        now = timezone.now()
        training_round.status = TrainingRound.Status.DONE
        training_round.finished_at = now
        training_round.metrics = _round_metrics(training_round, rows, metrics, straggler_slugs)
        training_round.timings = _round_timings(training_round, rows, computed, chain_s=chain_s, now=now)
        training_round.save(update_fields=["status", "finished_at", "metrics", "timings"])
        advance(job, training_round)
    log.info("job %s: model version %s written (%s)", job.job_id, version.round, version.cid)
    return version


def _round_metrics(
    training_round: TrainingRound, rows: list[RoundUpdate], metrics: dict[str, Any], stragglers: list[str]
) -> dict[str, Any]:
    """The version's test metrics with each hospital's report: the validation metrics of the global model
    it started from, its sample count, ε and losses; and who straggled, refused or sat out."""
    others = RoundUpdate.objects.filter(
        round=training_round,
        status__in=[RoundUpdate.Status.REFUSED, RoundUpdate.Status.SAT_OUT, RoundUpdate.Status.REJECTED],
    ).select_related("hospital")
    return aggregation.json_safe(
        {
            "test": metrics.get("test"),
            "samples": {row.hospital.slug: row.sample_count for row in rows},
            "validation": {row.hospital.slug: row.metrics.get("validation") for row in rows if row.metrics},
            "train_loss": {row.hospital.slug: row.metrics.get("train_loss") for row in rows if row.metrics},
            "epsilon": {row.hospital.slug: row.epsilon for row in rows if row.epsilon is not None},
            "stragglers": stragglers,
            "not_included": {row.hospital.slug: row.reason_code for row in others},
        }
    )


def _round_timings(
    training_round: TrainingRound,
    rows: list[RoundUpdate],
    computed: aggregation.ComputedVersion,
    *,
    chain_s: float,
    now: Any,
) -> dict[str, Any]:
    started = training_round.started_at
    dispatched = [
        at
        for at in RoundUpdate.objects.filter(round=training_round).values_list("dispatched_at", flat=True)
        if at
    ]

    def longest(name: str) -> float | None:
        values = [row.timings.get(name) for row in rows if isinstance(row.timings, dict)]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return max(numbers) if numbers else None

    return {
        "dispatch_s": (max(dispatched) - started).total_seconds() if dispatched else None,
        "local_training_s": longest("train_s"),
        "upload_s": longest("upload_s"),
        "chain_s": chain_s,
        "aggregation_s": computed.aggregation_s,
        "wall_s": (now - started).total_seconds(),
    }
