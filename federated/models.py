"""Training jobs and their participating hospitals' plan approvals (issue 14).

A job's training plan has a content hash (`plan_hash`, see federated/plan.py); each participating hospital's
admin approves exactly that hash on chain (TrainingRegistry.approvePlanBySig, relayed through the outbox).
A `JobHospital` row mirrors one hospital's approval: pending -> queued (its outbox item) -> approved (the
block and transaction the indexer saw), or failed (the relayer gave up). A changed plan resets every row.

A running job has rounds (`TrainingRound`: round 0 pools the hospitals' feature moments, rounds 1..N train),
one `RoundUpdate` per hospital and round (what its worker sent, or why it sent nothing), and the global
`ModelVersion` each round publishes (round 0 = the initial weights). Updates and versions travel to the chain
through the outbox; their `chain_status` mirrors what the indexer saw. See federated/rounds.py.
"""

from __future__ import annotations

import secrets

from django.db import models
from django_celery_beat.models import PeriodicTask

from access.models import Hospital, User
from contracts.models import OutboxItem


def _random_seed() -> int:
    return secrets.randbits(62)


def _schedule_now() -> dict[str, str]:
    return {"kind": "now"}


class TrainingJob(models.Model):
    """A federated training job: its plan (model, strategy, hyper-parameters, DP) and its status."""

    class Status(models.TextChoices):
        DRAFT = "draft"  # plan set, approvals not (all) asked for
        APPROVING = "approving"  # approvals on their way
        READY = "ready"  # every participating hospital approved the current plan hash on chain
        SCHEDULED = "scheduled"  # waiting for its start time, or (periodic) for its next firing
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    # The bytes32 jobId on chain ("0x" + 64 hex): random, so no two databases (or test runs) sharing a chain
    # ever name the same job.
    job_id = models.CharField(max_length=66, unique=True)
    name = models.CharField(max_length=200)
    task = models.CharField(max_length=64)
    model_spec = models.JSONField()
    strategy_spec = models.JSONField()
    local_epochs = models.PositiveIntegerField()
    batch_size = models.PositiveIntegerField()
    lr = models.FloatField()
    rounds = models.PositiveIntegerField()
    quorum = models.PositiveIntegerField()
    round_timeout_s = models.PositiveIntegerField()
    dp = models.JSONField(null=True, blank=True)  # federated.privacy.DPConfig's JSON, or null: no DP
    plan_hash = models.CharField(max_length=66)  # "0x" + sha256 hex of the canonical plan
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    hospitals = models.ManyToManyField(Hospital, through="JobHospital", related_name="training_jobs")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="created_training_jobs")
    created_at = models.DateTimeField(auto_now_add=True)
    # The seed of the initial weights and of each round's shuffles (random at create; part of no plan hash).
    seed = models.BigIntegerField(default=_random_seed)
    # {"kind": "now"} | {"kind": "at", "at": ISO 8601} | {"kind": "periodic", "every_s": int}
    schedule = models.JSONField(default=_schedule_now)
    periodic_task = models.ForeignKey(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failure_reason = models.TextField(blank=True, default="")
    retrain_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retrainings"
    )
    current_round = models.IntegerField(default=0)  # the latest round started (0 = moments)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class JobHospital(models.Model):
    """One participating hospital of a job, with the state of its approval of the job's plan hash."""

    class Approval(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        APPROVED = "approved"
        FAILED = "failed"

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="participants")
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="training_participations")
    approval = models.CharField(max_length=10, choices=Approval.choices, default=Approval.PENDING)
    # The plan hash the queued or approved signature is for; empty while pending.
    approval_plan_hash = models.CharField(max_length=66, blank=True, default="")
    outbox_item = models.ForeignKey(
        OutboxItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_block = models.BigIntegerField(null=True, blank=True)
    approved_tx = models.CharField(max_length=66, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "hospital"], name="job_hospital_unique")]
        ordering = ["job", "hospital__name"]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.hospital_id}: {self.approval}"


class ChainStatus(models.TextChoices):
    """Where an update's or a model version's outbox item stands ("" before it is queued)."""

    NONE = "", "none"
    QUEUED = "queued"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class TrainingRound(models.Model):
    """One round of a job: round 0 pools feature moments, rounds 1..N train from the latest model version."""

    class Kind(models.TextChoices):
        MOMENTS = "moments"
        TRAIN = "train"

    class Status(models.TextChoices):
        RUNNING = "running"
        AGGREGATING = "aggregating"
        DONE = "done"
        FAILED = "failed"

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="training_rounds")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    pinned_block = models.BigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    # {dispatch_s, local_training_s, upload_s, chain_s, aggregation_s, wall_s}
    timings = models.JSONField(default=dict)
    # {"test": SplitMetrics JSON, "validation": {hospital slug: SplitMetrics JSON}, "samples": {slug: n}}
    metrics = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="training_round_unique")]
        ordering = ["job", "number"]

    def __str__(self) -> str:
        return f"{self.job_id} round {self.number} ({self.status})"


class RoundUpdate(models.Model):
    """One hospital's part in one round: dispatched, then its update (accepted or rejected), its refusal, or
    nothing (straggler)."""

    class Status(models.TextChoices):
        DISPATCHED = "dispatched"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        REFUSED = "refused"
        SAT_OUT = "sat_out"
        STRAGGLER = "straggler"

    round = models.ForeignKey(TrainingRound, on_delete=models.CASCADE, related_name="updates")
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="training_updates")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DISPATCHED)
    # When the local-round task reached the broker; null while its sending failed (a sweep sends it again).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=64, blank=True, default="")
    reason_detail = models.TextField(blank=True, default="")
    cid = models.CharField(max_length=128, blank=True, default="")
    weights_hash = models.CharField(max_length=66, blank=True, default="")  # "0x" + sha256 of the weights
    update_id = models.CharField(max_length=66, blank=True, default="")  # the on-chain update id
    sample_count = models.PositiveIntegerField(null=True, blank=True)
    patient_root = models.CharField(max_length=66, blank=True, default="")
    pinned_block = models.BigIntegerField(null=True, blank=True)
    signature = models.CharField(max_length=132, blank=True, default="")
    deadline = models.BigIntegerField(null=True, blank=True)  # the Update signature's deadline (unix s)
    moments = models.JSONField(null=True, blank=True)  # round 0: networks.FeatureMoments JSON
    metrics = models.JSONField(default=dict)
    epsilon = models.FloatField(null=True, blank=True)
    timings = models.JSONField(default=dict)
    received_at = models.DateTimeField(null=True, blank=True)
    outbox_item = models.ForeignKey(
        OutboxItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chain_block = models.BigIntegerField(null=True, blank=True)
    chain_tx = models.CharField(max_length=66, blank=True, default="")
    chain_status = models.CharField(
        max_length=10, choices=ChainStatus.choices, blank=True, default=ChainStatus.NONE
    )
    chain_error = models.CharField(max_length=64, blank=True, default="")  # the contract's skip reason

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "hospital"], name="round_update_unique")]
        ordering = ["round", "hospital__name"]
        indexes = [models.Index(fields=["update_id"], name="round_update_update_id")]

    def __str__(self) -> str:
        return f"{self.round_id}/{self.hospital_id}: {self.status}"


class UpdatePatient(models.Model):
    """A patient whose records an accepted update trained on (the leaves of its patient root)."""

    update = models.ForeignKey(RoundUpdate, on_delete=models.CASCADE, related_name="patients")
    patient_address = models.CharField(max_length=42, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["update", "patient_address"], name="update_patient_unique")
        ]

    def __str__(self) -> str:
        return f"{self.update_id}: {self.patient_address}"


class UpdateRejection(models.Model):
    """An update refused before it could be pinned on a RoundUpdate row (bad signature, unknown job, round or
    hospital): kept so an operator sees who keeps sending what."""

    job = models.ForeignKey(
        TrainingJob, null=True, blank=True, on_delete=models.CASCADE, related_name="update_rejections"
    )
    round_number = models.IntegerField(null=True, blank=True)
    hospital_id = models.CharField(max_length=66, blank=True, default="")  # bytes32 as sent, unverified
    reason_code = models.CharField(max_length=64)
    detail = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.round_number}/{self.hospital_id}: {self.reason_code}"


class ModelVersion(models.Model):
    """A published global model: round 0 = the initial weights, round n = the aggregate of round n."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="model_versions")
    round = models.PositiveIntegerField()
    cid = models.CharField(max_length=128)
    weights_hash = models.CharField(max_length=66)
    metrics = models.JSONField(default=dict)
    metrics_hash = models.CharField(max_length=66)
    updates_root = models.CharField(max_length=66)
    updates = models.ManyToManyField(RoundUpdate, blank=True, related_name="model_versions")
    report = models.JSONField(default=dict)  # strategies.AggregationReport.as_dict()
    outbox_item = models.ForeignKey(
        OutboxItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chain_status = models.CharField(
        max_length=10, choices=ChainStatus.choices, blank=True, default=ChainStatus.NONE
    )
    chain_block = models.BigIntegerField(null=True, blank=True)
    chain_tx = models.CharField(max_length=66, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "round"], name="model_version_unique")]
        ordering = ["job", "round"]

    def __str__(self) -> str:
        return f"{self.job_id} v{self.round}"
