"""Break-glass: a doctor's time-bound emergency access to a patient's records without consent,
reviewed afterwards by the admin of the doctor's hospital."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ReviewStatus(models.TextChoices):
    PENDING = "pending"
    JUSTIFIED = "justified"
    UNJUSTIFIED = "unjustified"


class BreakGlass(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glasses"
    )
    hospital = models.ForeignKey("access.Hospital", on_delete=models.PROTECT, related_name="break_glasses")
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glasses_on_me"
    )
    patient_address = models.CharField(max_length=42)
    reason = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Set when an "unjustified" verdict cuts a still-live break-glass short.
    ended_at = models.DateTimeField(null=True, blank=True)
    review_status = models.CharField(
        max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["doctor", "patient_address", "expires_at"], name="break_glass_live_idx"),
            models.Index(fields=["hospital", "review_status"], name="break_glass_review_idx"),
        ]

    def __str__(self) -> str:
        return f"BreakGlass {self.id} {self.doctor_id}->{self.patient_address} ({self.review_status})"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None and self.expires_at > timezone.now()
