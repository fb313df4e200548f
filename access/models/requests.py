"""Access requests: a doctor asks a patient for a consent; the patient approves by signing a grant
(possibly narrower) or declines."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.models.consent import Purpose


class RequestStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class AccessRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests_made"
    )
    hospital = models.ForeignKey("access.Hospital", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests_received"
    )
    patient_address = models.CharField(max_length=42)
    scope = models.CharField(max_length=120)
    purpose = models.PositiveSmallIntegerField(choices=Purpose.choices)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Consent expiry asked for; null = none."
    )
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decline_note = models.TextField(blank=True, default="")
    consent = models.ForeignKey(
        "access.Consent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_scope = models.CharField(max_length=120, blank=True, default="")
    granted_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["patient", "status"], name="access_request_patient_idx"),
            models.Index(fields=["doctor", "status"], name="access_request_doctor_idx"),
        ]

    def __str__(self) -> str:
        return f"AccessRequest {self.id} {self.scope} ({self.status})"
