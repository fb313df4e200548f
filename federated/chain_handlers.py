"""Handlers the indexer calls with TrainingRegistry events: a hospital's plan approval counts once it is on
chain and is for the job's current plan hash; a job whose participants all approved it is ready. An
accepted update is confirmed by its `UpdateSubmitted` (or failed by `UpdateSkipped`, with the contract's
reason), a model version by its `ModelVersionPublished`. A re-org forgets what was mined in orphaned
blocks (the relayer's rewind sends those outbox items again)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contracts import indexer
from contracts.events import error_name
from contracts.messages import training_update_id
from federated.models import ChainStatus, JobHospital, ModelVersion, RoundUpdate, TrainingJob


def register() -> None:
    indexer.register_handler("TrainingRegistry", "PlanApproved", on_plan_approved)
    indexer.register_handler("TrainingRegistry", "UpdateSubmitted", on_update_submitted)
    indexer.register_handler("TrainingRegistry", "UpdateSkipped", on_update_skipped)
    indexer.register_handler("TrainingRegistry", "ModelVersionPublished", on_model_version_published)
    indexer.register_rewind(rewind_from)


def on_plan_approved(events: Iterable[Any]) -> None:
    for event in events:
        args = event.args
        row = (
            JobHospital.objects.select_related("job")
            .filter(job__job_id=args["jobId"].lower(), hospital__hospital_id=args["hospitalId"].lower())
            .first()
        )
        if row is None:
            continue  # another deployment's job on the same chain
        if args["planHash"].lower() == row.job.plan_hash:
            row.approval = JobHospital.Approval.APPROVED
            row.approval_plan_hash = row.job.plan_hash
            row.approved_block = event.block_number
            row.approved_tx = event.tx_hash
        elif row.approval == JobHospital.Approval.APPROVED:
            # The chain keeps a hospital's latest approval only: one of another plan replaced the current one.
            row.approval = JobHospital.Approval.PENDING
            row.approval_plan_hash = ""
            row.approved_block = None
            row.approved_tx = ""
        else:
            continue  # an approval of an old plan: it never counts
        row.save(update_fields=["approval", "approval_plan_hash", "approved_block", "approved_tx"])
        _settle_status(row.job)


def _settle_status(job: TrainingJob) -> None:
    """approving <-> ready as the participants' approvals of the current plan come and go."""
    all_approved = not job.participants.exclude(approval=JobHospital.Approval.APPROVED).exists()
    if all_approved and job.status in (TrainingJob.Status.DRAFT, TrainingJob.Status.APPROVING):
        job.status = TrainingJob.Status.READY
    elif not all_approved and job.status == TrainingJob.Status.READY:
        job.status = TrainingJob.Status.APPROVING
    else:
        return
    job.save(update_fields=["status"])


def _bytes32(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def on_update_submitted(events: Iterable[Any]) -> None:
    for event in events:
        args = event.args
        update_id = training_update_id(
            _bytes32(args["jobId"]), int(args["round"]), _bytes32(args["hospitalId"])
        )
        RoundUpdate.objects.filter(update_id="0x" + update_id.hex()).update(
            chain_status=ChainStatus.CONFIRMED,
            chain_error="",
            chain_block=event.block_number,
            chain_tx=event.tx_hash,
        )


def on_update_skipped(events: Iterable[Any]) -> None:
    """The contract refused an update (e.g. PlanNotApproved after a changed approval, DeadlineExpired). An
    update already confirmed stays so: a skip for its id is another party's conflicting copy."""
    for event in events:
        reason = error_name(str(event.args["reason"]))
        RoundUpdate.objects.filter(update_id=str(event.args["updateId"]).lower()).exclude(
            chain_status=ChainStatus.CONFIRMED
        ).update(
            chain_status=ChainStatus.FAILED,
            chain_error=reason[:64],
            chain_block=event.block_number,
            chain_tx=event.tx_hash,
        )


def on_model_version_published(events: Iterable[Any]) -> None:
    for event in events:
        args = event.args
        ModelVersion.objects.filter(
            job__job_id=str(args["jobId"]).lower(),
            round=int(args["round"]),
            weights_hash=str(args["weightsHash"]).lower(),
        ).update(chain_status=ChainStatus.CONFIRMED, chain_block=event.block_number, chain_tx=event.tx_hash)


def rewind_from(block_number: int) -> None:
    """Approvals, updates and model versions mined in blocks >= block_number are no longer on the canonical
    chain: back to queued (the relayer's rewind, which runs first, sends their outbox items again)."""
    orphaned = JobHospital.objects.filter(approved_block__gte=block_number)
    jobs = set(orphaned.values_list("job_id", flat=True))
    orphaned.update(approval=JobHospital.Approval.QUEUED, approved_block=None, approved_tx="")
    for job in TrainingJob.objects.filter(pk__in=jobs):
        _settle_status(job)
    RoundUpdate.objects.filter(chain_block__gte=block_number).update(
        chain_status=ChainStatus.QUEUED, chain_error="", chain_block=None, chain_tx=""
    )
    ModelVersion.objects.filter(chain_block__gte=block_number).update(
        chain_status=ChainStatus.QUEUED, chain_block=None, chain_tx=""
    )
