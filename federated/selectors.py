"""Reads of training jobs and model versions as each user may see them.

Only the admins of a job's participating hospitals see the job, its rounds, its model versions and their
weights; to everyone else (other hospitals' admins, doctors, patients, the consortium admin) the job does
not exist (404, the same answer as for an id no job has). Doctors of participating hospitals may ask the
job's model for a prediction (`job_for_prediction`), which shows them the job's name and version only.
"""

from __future__ import annotations

import re

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, QuerySet

from access.identity.selectors import is_active_doctor
from access.models import Role, User
from federated.models import (
    ChainStatus,
    JobHospital,
    ModelVersion,
    RoundUpdate,
    TrainingJob,
    TrainingRound,
)
from healthhash.errors import NotFound

_JOB_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_JOB_NUMBER = re.compile(r"[0-9]{1,18}")
# Round numbers are uint32 on chain; anything larger names no round (and would overflow some databases).
MAX_ROUND = 2**32 - 1


class UnknownJob(NotFound):
    code = "unknown_job"


class UnknownVersion(NotFound):
    code = "unknown_version"


def jobs_visible_to(user: User) -> QuerySet[TrainingJob]:
    """The jobs in which the hospital `user` administers takes part; none for any other user."""
    if user.role != Role.HOSPITAL_ADMIN or user.hospital_id is None:
        return TrainingJob.objects.none()
    mine = JobHospital.objects.filter(
        job=OuterRef("pk"), hospital_id=user.hospital_id, hospital__admin_id=user.pk
    )
    return TrainingJob.objects.filter(Exists(mine))


def _by_reference(jobs: QuerySet[TrainingJob], reference: str) -> TrainingJob:
    """A job by its on-chain id ("0x" + 64 hex, any case) or its number; 404 for anything else."""
    if _JOB_ID.fullmatch(reference):
        job = jobs.filter(job_id=reference.lower()).first()
    elif _JOB_NUMBER.fullmatch(reference):
        job = jobs.filter(pk=int(reference)).first()
    else:
        job = None
    if job is None:
        raise UnknownJob("No such training job.")
    return job


def visible_job(user: User, reference: str) -> TrainingJob:
    """The job `reference` names, if `user` may see it; 404 `unknown_job` otherwise."""
    return _by_reference(jobs_visible_to(user), reference)


def jobs_for_prediction(user: User) -> QuerySet[TrainingJob]:
    """The jobs an active doctor may predict with: those her hospital takes part in; none for anyone else."""
    if user.role != Role.DOCTOR or user.hospital_id is None or not is_active_doctor(user):
        return TrainingJob.objects.none()
    taking_part = JobHospital.objects.filter(job=OuterRef("pk"), hospital_id=user.hospital_id)
    return TrainingJob.objects.filter(Exists(taking_part))


def job_for_prediction(user: User, reference: str) -> TrainingJob:
    """The job, for an active doctor of one of its participating hospitals; 404 for everyone else."""
    return _by_reference(jobs_for_prediction(user), reference)


def job_detail(job: TrainingJob) -> TrainingJob:
    """`job` with what its detail shows loaded: participants, rounds with their updates and versions."""
    updates = RoundUpdate.objects.select_related("hospital").order_by("hospital__name")
    return (
        TrainingJob.objects.select_related("created_by", "retrain_of")
        .prefetch_related(
            Prefetch("participants", queryset=JobHospital.objects.select_related("hospital")),
            Prefetch(
                "training_rounds",
                queryset=TrainingRound.objects.order_by("number").prefetch_related(
                    Prefetch("updates", queryset=updates)
                ),
            ),
            Prefetch("model_versions", queryset=ModelVersion.objects.order_by("round")),
        )
        .get(pk=job.pk)
    )


def model_jobs_visible_to(user: User) -> QuerySet[TrainingJob]:
    """The jobs with at least one model version that `user` may see (a hospital admin) or predict with (a
    doctor of a participating hospital), with `version_count` and `latest_round`."""
    jobs = jobs_for_prediction(user) if user.role == Role.DOCTOR else jobs_visible_to(user)
    return jobs.annotate(
        version_count=Count("model_versions"), latest_round=Max("model_versions__round")
    ).filter(version_count__gt=0)


def versions_of(job: TrainingJob) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(job=job).order_by("round")


def version_of(job: TrainingJob, round_number: int) -> ModelVersion:
    """The model version of `job` published by round `round_number`; 404 `unknown_version` otherwise."""
    version = None
    if 0 <= round_number <= MAX_ROUND:
        version = ModelVersion.objects.filter(job=job, round=round_number).select_related("job").first()
    if version is None:
        raise UnknownVersion(f"Job {job.job_id} has no model version of round {round_number}.")
    return version


def answering_version(job: TrainingJob) -> ModelVersion:
    """The version that answers predictions: the latest one confirmed on chain, else the latest one."""
    versions = ModelVersion.objects.filter(job=job).select_related("job").order_by("-round")
    version = versions.filter(chain_status=ChainStatus.CONFIRMED).first() or versions.first()
    if version is None:
        raise UnknownVersion(f"Job {job.job_id} has no model version yet.", code="no_model_version")
    return version
