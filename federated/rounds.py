"""Training rounds, the coordinator's services: start a job and its rounds, take what the hospital workers
send (release requests, feature moments, refusals, signed updates), aggregate once the quorum is in, close
a round at its timeout, cancel a job. The round state machine is federated/round_state.py's, the writing of
a round's result federated/round_results.py's; their entry points are re-exported here, the one module the
API, the tasks and the commands call.

A round's life: `start_round` pins the indexer's last block, writes the round and one `RoundUpdate` per
hospital (dispatched), and after commit sends each hospital its task (federated/dispatch.py) and the round's
timeout. Answers move a row to accepted / rejected / refused / sat_out. When accepted rows reach the
job's quorum the round turns `aggregating` under its row lock, so exactly one caller enqueues the
aggregation; `aggregate_round` computes outside any transaction (federated/aggregation.py) and writes the
model version, its outbox item, the stragglers and the next round in one transaction, once (a second run
finds the round done). Below quorum at the timeout, or when refusals make the quorum unreachable, the round
and the job fail with a reason. Round 0 pools feature moments into model version 0; rounds 1..N train.

Every refused request is recorded: on the hospital's row (status rejected, reason code and detail) when
the signed sender is the hospital and the row may still take an update, else as an `UpdateRejection` (bad
signature, unknown job/round/hospital, round closed, conflicting content), so a forged request can never
change a hospital's row. A rejected hospital may send a corrected update while the round runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.models import Hospital, User
from contracts import client, outbox
from contracts.messages import BadMessage, Update
from contracts.relayer_kinds import TrainingUpdateItem
from federated import aggregation, dispatch, release, round_updates
from federated.models import (
    ChainStatus,
    JobHospital,
    ModelVersion,
    RoundUpdate,
    TrainingJob,
    TrainingRound,
    UpdatePatient,
    UpdateRejection,
)
from federated.networks import FeatureMoments, InvalidPlan
from federated.release_format import SealedRelease
from federated.round_results import aggregate_round
from federated.round_state import (
    OPEN_ROWS,
    ChainNotIndexed,
    JobNotReady,
    fail_round,
    settle,
    signature_ttl_s,
    start_job,
    start_round,
)
from federated.round_updates import BadSignature, Submission, UpdateRefused
from federated.services import _require_job_admin
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound

log = logging.getLogger(__name__)

NO_CONSENTED_RECORDS = "no_consented_records"
_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DETAIL_MAX = 2000
_FINISHED = (TrainingJob.Status.DONE, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED)


class JobFinished(Conflict):
    code = "job_finished"


class UnknownJob(NotFound):
    code = "unknown_job"


class UnknownHospital(NotFound):
    code = "unknown_hospital"


class UnknownRound(NotFound):
    code = "unknown_round"


class HospitalNotInJob(Forbidden):
    code = "hospital_not_in_job"


class RoundNotRunning(Conflict):
    code = "round_not_running"


class WrongRoundKind(Conflict):
    code = "wrong_round_kind"


class AlreadyAnswered(Conflict):
    code = "already_answered"


class UpdateConflict(Conflict):
    code = "update_conflict"


# --------------------------------------------------------------------------- the worker's configuration


def worker_config() -> dict[str, Any]:
    """What a hospital worker needs to sign updates and store weights like the server."""
    return {
        "chain_id": client.chain_id(),
        "training_registry": client.deployment_address("TrainingRegistry"),
        "cid_version": settings.IPFS_CID_VERSION,
    }


# --------------------------------------------------------------------------- who is asking about what


@dataclass(frozen=True)
class _Target:
    job: TrainingJob
    training_round: TrainingRound
    hospital: Hospital
    participation: JobHospital
    row: RoundUpdate


def _target(*, job_id: str, round_number: int, hospital_id: str) -> _Target:
    job = TrainingJob.objects.filter(job_id=str(job_id).lower()).first()
    if job is None:
        raise UnknownJob("No such training job.")
    hospital = Hospital.objects.filter(hospital_id=str(hospital_id).lower()).first()
    if hospital is None:
        raise UnknownHospital("No such hospital.")
    participation = JobHospital.objects.filter(job=job, hospital=hospital).first()
    if participation is None:
        raise HospitalNotInJob(f"{hospital.slug} does not take part in this job.")
    training_round = TrainingRound.objects.filter(job=job, number=round_number).first()
    if training_round is None:
        raise UnknownRound(f"The job has no round {round_number}.")
    row = RoundUpdate.objects.get(round=training_round, hospital=hospital)
    return _Target(job, training_round, hospital, participation, row)


_ANSWERED = (RoundUpdate.Status.ACCEPTED, RoundUpdate.Status.SAT_OUT, RoundUpdate.Status.REFUSED)


def _require_running(target: _Target, *, kind: str) -> None:
    """The round is of `kind` and running. A hospital that answered already is let through whatever the
    round's state, so that the same answer sent again (a worker retrying after a lost response) is
    recognised as a duplicate even once the round has moved on; other content is refused later."""
    if target.training_round.kind != kind:
        raise WrongRoundKind(f"Round {target.training_round.number} is a {target.training_round.kind} round.")
    if target.row.status in _ANSWERED:
        return
    if target.job.status != TrainingJob.Status.RUNNING:
        raise RoundNotRunning(f"The job is {target.job.status}.")
    if target.training_round.status != TrainingRound.Status.RUNNING:
        raise RoundNotRunning(f"Round {target.training_round.number} is {target.training_round.status}.")


def _record_unattributed(
    *, action: str, job_id: Any, round_number: Any, hospital_id: Any, error: DomainError
) -> None:
    job = TrainingJob.objects.filter(job_id=str(job_id).lower()).first() if isinstance(job_id, str) else None
    UpdateRejection.objects.create(
        job=job,
        round_number=round_number if isinstance(round_number, int) and 0 <= round_number < 2**31 else None,
        hospital_id=str(hospital_id)[:66] if hospital_id is not None else "",
        reason_code=error.code[:64],
        detail=f"{action}: {error.detail}"[:_DETAIL_MAX],
    )
    log.info("refused a worker's %s for job %s: %s", action, job_id, error.code)


def _checked_target(
    *, action: str, kind: str, job_id: str, round_number: int, hospital_id: str, signer: str
) -> _Target:
    """The request's job, round and hospital, signed by the hospital and for a running round of `kind`;
    any failure is recorded as an UpdateRejection and raised."""
    try:
        target = _target(job_id=job_id, round_number=round_number, hospital_id=hospital_id)
        round_updates.check_signer(signer=signer, hospital=target.hospital)
        _require_running(target, kind=kind)
    except DomainError as error:
        _record_unattributed(
            action=action, job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise
    return target


def _reject_row(row_pk: int, error: DomainError, **sent: Any) -> None:
    """Record a refused answer on the hospital's row (if it still takes one) and keep what was sent."""
    with transaction.atomic():
        row = RoundUpdate.objects.select_for_update().get(pk=row_pk)
        if row.status not in OPEN_ROWS:
            return
        row.status = RoundUpdate.Status.REJECTED
        row.reason_code = error.code[:64]
        row.reason_detail = error.detail[:_DETAIL_MAX]
        row.received_at = timezone.now()
        for name, value in sent.items():
            setattr(row, name, value)
        row.save()
    log.info("rejected an answer of row %s: %s", row_pk, error.code)


# --------------------------------------------------------------------------- release, moments, refusals


def release_for_worker(
    *, job_id: str, round_number: int, hospital_id: str, signer: str, known_block: int | None = None
) -> SealedRelease:
    """The hospital's dataset release for a round it still owes an answer (sealed to its public key; a
    delta from `known_block`, the block of the job's release the worker holds, when it names one)."""
    try:
        target = _target(job_id=job_id, round_number=round_number, hospital_id=hospital_id)
        round_updates.check_signer(signer=signer, hospital=target.hospital)
        _require_running(target, kind=target.training_round.kind)
        if target.row.status not in OPEN_ROWS:
            raise AlreadyAnswered(f"{target.hospital.slug} already answered round {round_number}.")
    except DomainError as error:
        _record_unattributed(
            action="release", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise
    return release.release_dataset(
        hospital=target.hospital,
        job_key=target.job.job_id,
        pinned_block=target.training_round.pinned_block,
        known_block=known_block,
    )


def receive_moments(
    *, job_id: str, round_number: int, hospital_id: str, signer: str, moments: dict[str, Any]
) -> RoundUpdate:
    """A hospital's feature moments for round 0; the same moments again return the accepted row."""
    target = _checked_target(
        action="moments",
        kind=TrainingRound.Kind.MOMENTS,
        job_id=job_id,
        round_number=round_number,
        hospital_id=hospital_id,
        signer=signer,
    )
    try:
        parsed = FeatureMoments.from_json(moments if isinstance(moments, Mapping) else {})
    except InvalidPlan as exc:
        error = UpdateRefused(exc.detail, field=exc.field, code="invalid_moments")
        _reject_row(target.row.pk, error)
        raise error from exc
    canonical = parsed.as_json()
    try:
        with transaction.atomic():
            row, duplicate = _lock_open_row(target, same=lambda row: row.moments == canonical)
            if duplicate:
                return row
            row.status = RoundUpdate.Status.ACCEPTED
            row.reason_code = row.reason_detail = ""
            row.moments = canonical
            row.sample_count = parsed.count
            row.pinned_block = target.training_round.pinned_block
            row.received_at = timezone.now()
            row.save()
            settle(target.job.pk, target.training_round.pk)
            return row
    except DomainError as error:
        _record_unattributed(
            action="moments", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise


def receive_refusal(
    *, job_id: str, round_number: int, hospital_id: str, signer: str, reason: str, detail: str
) -> RoundUpdate:
    """The hospital will send nothing this round: `no_consented_records` sits it out, any other reason is
    a refusal (plan_not_approved, privacy_budget_exceeded, ...). Either may make the quorum unreachable,
    which fails the job at once."""
    training_round = TrainingRound.objects.filter(
        job__job_id=str(job_id).lower(), number=round_number
    ).first()
    kind = training_round.kind if training_round is not None else TrainingRound.Kind.TRAIN
    target = _checked_target(
        action="refusal",
        kind=kind,
        job_id=job_id,
        round_number=round_number,
        hospital_id=hospital_id,
        signer=signer,
    )
    if not isinstance(reason, str) or not _REASON_CODE.match(reason):
        error = UpdateRefused("reason must be a code of lowercase letters, digits and _.", field="reason")
        _record_unattributed(
            action="refusal", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise error
    status = RoundUpdate.Status.SAT_OUT if reason == NO_CONSENTED_RECORDS else RoundUpdate.Status.REFUSED
    text = str(detail or "")[:_DETAIL_MAX]
    try:
        with transaction.atomic():
            row, duplicate = _lock_open_row(
                target, same=lambda row: row.status == status and row.reason_code == reason
            )
            if duplicate:
                return row
            row.status = status
            row.reason_code, row.reason_detail = reason, text
            row.received_at = timezone.now()
            row.save()
            settle(target.job.pk, target.training_round.pk)
            return row
    except DomainError as error:
        _record_unattributed(
            action="refusal", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise


def _lock_open_row(target: _Target, *, same: Any) -> tuple[RoundUpdate, bool]:
    """The row, locked with its round, if it still takes an answer: (row, False). An answered row whose
    answer is `same` as this one: (row, True). Anything else raises. Locks are always taken job, round,
    row, in that order (as start_round, close_round and aggregate_round take them), so none deadlock."""
    TrainingJob.objects.select_for_update().get(pk=target.job.pk)
    training_round = TrainingRound.objects.select_for_update().get(pk=target.training_round.pk)
    row = RoundUpdate.objects.select_for_update().get(pk=target.row.pk)
    if row.status in _ANSWERED and same(row):
        return row, True
    if row.status == RoundUpdate.Status.ACCEPTED:
        raise UpdateConflict(
            f"{target.hospital.slug}'s answer for this round is in already, with other content."
        )
    if training_round.status != TrainingRound.Status.RUNNING:
        raise RoundNotRunning(f"Round {training_round.number} is {training_round.status}.")
    if row.status not in OPEN_ROWS:
        raise AlreadyAnswered(f"{target.hospital.slug} already answered this round ({row.status}).")
    return row, False


# --------------------------------------------------------------------------- updates


def receive_update(
    *,
    message: dict[str, Any],
    signature: str,
    cid: str,
    patients: list[str],
    metrics: dict[str, Any],
    epsilon: float | None,
    timings: dict[str, Any],
) -> tuple[RoundUpdate, bool]:
    """Check and accept a hospital's signed update (DESIGN14 step 6): (row, duplicate). The same content
    again is (row, True); other content for an accepted row is 409 `update_conflict`. Each refusal is
    recorded (see the module docstring) and raised; a store that is down is a 503 and records nothing."""
    submission = Submission(message, signature, cid, patients, metrics, epsilon, timings)
    ids = message if isinstance(message, Mapping) else {}
    job_id, round_number, hospital_id = ids.get("jobId"), ids.get("round"), ids.get("hospitalId")
    try:
        update = round_updates.parse_update(message)
        job_id, round_number = "0x" + update.job_id.hex(), update.round
        hospital_id = "0x" + update.hospital_id.hex()
        target = _target(job_id=job_id, round_number=round_number, hospital_id=hospital_id)
        round_updates.check_signer(
            signer=round_updates.signer_of(update, signature), hospital=target.hospital
        )
        _require_running(target, kind=TrainingRound.Kind.TRAIN)
        if target.row.status == RoundUpdate.Status.ACCEPTED:
            return _duplicate_or_conflict(target, update)
        if target.row.status not in OPEN_ROWS:
            raise AlreadyAnswered(
                f"{target.hospital.slug} already answered this round ({target.row.status})."
            )
    except (DomainError, BadMessage) as error:
        _record_unattributed(
            action="update", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise
    try:
        patient_addresses = _verify(target, update, submission)
    except UpdateRefused as error:
        _reject_row(target.row.pk, error, **_sent_fields(update, submission))
        raise
    try:
        return _accept(target, update, submission, patient_addresses)
    except DomainError as error:  # the row or the round changed since the checks (a concurrent answer)
        _record_unattributed(
            action="update", job_id=job_id, round_number=round_number, hospital_id=hospital_id, error=error
        )
        raise


def _is_same_update(row: RoundUpdate, update: Update) -> bool:
    """An accepted row holds this update's content (the deadline aside, as on chain)."""
    item = row.outbox_item
    return (
        row.status == RoundUpdate.Status.ACCEPTED
        and item is not None
        and Update.from_message(item.payload["message"]).update_hash == update.update_hash
    )


def _duplicate_or_conflict(target: _Target, update: Update) -> tuple[RoundUpdate, bool]:
    if _is_same_update(target.row, update):
        return target.row, True
    raise UpdateConflict(f"{target.hospital.slug}'s update for this round is in already, with other content.")


def _verify(target: _Target, update: Update, submission: Submission) -> list[str]:
    """Every attributable check; UpdateRefused names the first that fails."""
    round_updates.check_terms(
        update, job=target.job, training_round=target.training_round, participation=target.participation
    )
    if not isinstance(submission.metrics, Mapping) or not isinstance(submission.timings, Mapping):
        raise UpdateRefused("metrics and timings must be objects.", field="metrics")
    epsilon = submission.epsilon
    if epsilon is not None and (
        isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or epsilon < 0
    ):
        raise UpdateRefused("epsilon must be a number >= 0 or null.", field="epsilon")
    addresses = round_updates.check_patients(
        update, submission.patients, hospital=target.hospital, pinned_block=target.training_round.pinned_block
    )
    fetched = round_updates.fetch_weights(update, submission.cid)
    base = ModelVersion.objects.get(job=target.job, round=target.training_round.number - 1)
    round_updates.check_weights(
        fetched.weights,
        hospital_id=target.hospital.slug,
        samples=update.samples,
        base=aggregation.load_weights(cid=base.cid, weights_hash=base.weights_hash),
    )
    return addresses


def _sent_fields(update: Update, submission: Submission) -> dict[str, Any]:
    """What a worker sent, kept on its row (accepted or rejected) for the record."""
    return {
        "cid": str(submission.cid)[:128],
        "weights_hash": "0x" + update.weights_hash.hex(),
        "update_id": "0x" + update.update_id.hex(),
        "sample_count": min(update.samples, 2**31 - 1),
        "patient_root": "0x" + update.patient_root.hex(),
        "pinned_block": min(update.pinned_block, 2**63 - 1),
        "signature": str(submission.signature)[:132],
        "deadline": min(update.deadline, 2**63 - 1),
    }


def _accept(
    target: _Target, update: Update, submission: Submission, patients: Sequence[str]
) -> tuple[RoundUpdate, bool]:
    with transaction.atomic():
        row, duplicate = _lock_open_row(target, same=lambda row: _is_same_update(row, update))
        if duplicate:
            return row, True
        row.status = RoundUpdate.Status.ACCEPTED
        row.reason_code = row.reason_detail = ""
        for name, value in _sent_fields(update, submission).items():
            setattr(row, name, value)
        row.metrics = aggregation.json_safe(dict(submission.metrics))
        row.epsilon = None if submission.epsilon is None else float(submission.epsilon)
        row.timings = aggregation.json_safe(dict(submission.timings))
        row.received_at = timezone.now()
        row.outbox_item = outbox.enqueue(TrainingUpdateItem(update, submission.signature))
        row.chain_status = ChainStatus.QUEUED
        row.save()
        UpdatePatient.objects.filter(update=row).delete()
        UpdatePatient.objects.bulk_create(
            [UpdatePatient(update=row, patient_address=address) for address in patients], batch_size=1000
        )
        settle(target.job.pk, target.training_round.pk)
    log.info(
        "job %s round %s: update of %s accepted",
        target.job.job_id,
        target.training_round.number,
        target.hospital.slug,
    )
    return row, False


# --------------------------------------------------------------------------- quorum, timeout, failure


def close_round(*, job: TrainingJob, number: int) -> TrainingRound:
    """At the round's timeout: aggregate what is in if it makes the quorum, else fail the job. A round
    that is not running, or not yet past its deadline, is returned unchanged."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        training_round = TrainingRound.objects.select_for_update().get(job=job, number=number)
        if (
            training_round.status != TrainingRound.Status.RUNNING
            or timezone.now() < training_round.deadline_at
        ):
            return training_round
        accepted = RoundUpdate.objects.filter(
            round=training_round, status=RoundUpdate.Status.ACCEPTED
        ).count()
        if accepted < job.quorum:
            fail_round(
                job,
                training_round,
                reason=f"round {number}: {accepted} of quorum {job.quorum} updates by the timeout",
            )
            return training_round
        training_round.status = TrainingRound.Status.AGGREGATING
        training_round.save(update_fields=["status"])
    aggregate_round(job=job, number=number)
    training_round.refresh_from_db()
    return training_round


# --------------------------------------------------------------------------- aggregation


# --------------------------------------------------------------------------- cancel


@transaction.atomic
def cancel_job(*, job: TrainingJob, admin: User) -> TrainingJob:
    """Stop a job that has not finished: its running round fails ("job cancelled"), no round follows,
    a periodic schedule is deleted. Late answers are refused as for any closed round."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    _require_job_admin(
        admin, set(job.participants.values_list("hospital_id", flat=True)), to="cancel this job"
    )
    if job.status in _FINISHED:
        raise JobFinished(f"A {job.status} job cannot be cancelled.")
    reason = f"cancelled by {admin.username}"
    now = timezone.now()
    TrainingRound.objects.filter(
        job=job, status__in=[TrainingRound.Status.RUNNING, TrainingRound.Status.AGGREGATING]
    ).update(status=TrainingRound.Status.FAILED, reason=reason, finished_at=now)
    job.status = TrainingJob.Status.CANCELLED
    job.failure_reason = reason
    periodic = job.periodic_task
    job.periodic_task = None
    job.save(update_fields=["status", "failure_reason", "periodic_task"])
    if periodic is not None:
        periodic.delete()
    log.info("job %s cancelled by %s", job.job_id, admin.username)
    return job


# --------------------------------------------------------------------------- the sweep


def sweep_rounds(*, aggregation_grace_s: float = 120.0) -> dict[str, int]:
    """What beat runs every few seconds, so that no lost broker message strands a round: send tasks that
    never reached the broker or whose hospital stayed silent (a killed worker), close rounds past their
    deadline, re-run aggregations lost past theirs."""
    dispatch.redispatch_silent(after_s=settings.TRAINING_REDISPATCH_AFTER_S)
    resent = sum(
        dispatch.send_round(pk, ttl_s=signature_ttl_s()) for pk in dispatch.rounds_waiting_for_dispatch()
    )
    closed = 0
    for job_pk, number in dispatch.overdue_rounds():
        try:
            close_round(job=TrainingJob(pk=job_pk), number=number)
        except Exception:  # one round's trouble (a store outage) must not stop the sweep of the others
            log.warning("sweep: closing round %s of job %s failed", number, job_pk, exc_info=True)
            continue
        closed += 1
    for job_pk, number in dispatch.stuck_aggregations(grace_s=aggregation_grace_s):
        dispatch.enqueue_aggregation(job_pk, number)
    return {"resent": resent, "closed": closed}


__all__ = [
    "BadSignature",
    "ChainNotIndexed",
    "JobNotReady",
    "aggregate_round",
    "cancel_job",
    "close_round",
    "receive_moments",
    "receive_refusal",
    "receive_update",
    "release_for_worker",
    "start_job",
    "start_round",
    "sweep_rounds",
    "worker_config",
]
