"""Training jobs and their participating hospitals' plan approvals (issue 14).

A job's training plan has a content hash (`plan_hash`, see federated/plan.py); each participating hospital's
admin approves exactly that hash on chain (TrainingRegistry.approvePlanBySig, relayed through the outbox).
A `JobHospital` row mirrors one hospital's approval: pending -> queued (its outbox item) -> approved (the
block and transaction the indexer saw), or failed (the relayer gave up). A changed plan resets every row.
"""

from __future__ import annotations

from django.db import models

from access.models import Hospital, User
from contracts.models import OutboxItem


class TrainingJob(models.Model):
    """A federated training job: its plan (model, strategy, hyper-parameters, DP) and its status."""

    class Status(models.TextChoices):
        DRAFT = "draft"  # plan set, approvals not (all) asked for
        APPROVING = "approving"  # approvals on their way
        READY = "ready"  # every participating hospital approved the current plan hash on chain
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
