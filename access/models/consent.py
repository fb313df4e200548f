"""Consent as indexed from the chain: one row per grant, temporal (active from block, ended at block).

A row is created as `pending` when a signed grant is accepted (with its outbox item, in the same
transaction), or directly by the indexer for a grant that reached the chain another way. The chain
is the source of truth: only indexed events move a row to active, revoked, superseded or failed.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Purpose(models.IntegerChoices):
    TREATMENT = 0, "TREATMENT"
    TRAINING = 1, "TRAINING"


class ConsentStatus(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"  # a later grant of the same key (e.g. a new expiry) replaced it
    FAILED = "failed"


class Consent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consent_key = models.CharField(max_length=66, help_text="The chain's consentId (0x-hex bytes32).")
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="consents_given"
    )
    patient_address = models.CharField(max_length=42)
    grantee_address = models.CharField(max_length=42)
    grantee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="consents_held"
    )
    grantee_hospital = models.ForeignKey(
        "access.Hospital", null=True, on_delete=models.PROTECT, related_name="consents_held"
    )
    scope = models.CharField(max_length=120, help_text='"chart", "category:<name>" or "record:<uuid>"')
    scope_hash = models.CharField(max_length=66)
    purpose = models.PositiveSmallIntegerField(choices=Purpose.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(help_text="Version the signed Grant carried.")
    status = models.CharField(max_length=12, choices=ConsentStatus.choices, default=ConsentStatus.PENDING)
    failure_reason = models.CharField(max_length=64, blank=True)

    grant_outbox = models.ForeignKey(
        "contracts.OutboxItem", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    grant_tx_hash = models.CharField(max_length=66, blank=True)
    granted_block = models.BigIntegerField(null=True)
    granted_at = models.DateTimeField(null=True)

    revoke_version = models.PositiveIntegerField(null=True)
    revoke_outbox = models.ForeignKey(
        "contracts.OutboxItem", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_requested_at = models.DateTimeField(null=True)
    revoke_failure_reason = models.CharField(max_length=64, blank=True)
    revoke_tx_hash = models.CharField(max_length=66, blank=True)
    ended_block = models.BigIntegerField(null=True, help_text="Block that revoked or superseded it.")
    ended_at = models.DateTimeField(null=True)

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The consent check: one index range scan per (patient, grantee, purpose, scope).
            models.Index(
                fields=["patient_address", "grantee_address", "purpose", "scope_hash", "granted_block"],
                name="consent_check_idx",
            ),
            models.Index(fields=["consent_key", "version"], name="consent_key_idx"),
            models.Index(fields=["grantee_address", "status"], name="consent_grantee_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["consent_key", "version"], name="consent_one_row_per_grant"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consent {self.id} {self.scope} {self.get_purpose_display()} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def effective_status(self) -> str:
        """What a user sees: `expired` is derived, not stored, so it needs no job to flip it."""
        if self.status == ConsentStatus.ACTIVE and self.is_expired:
            return "expired"
        return self.status

    @property
    def revocation_pending(self) -> bool:
        return (
            self.revoke_requested_at is not None
            and self.status == ConsentStatus.ACTIVE
            and not (self.revoke_failure_reason)
        )
