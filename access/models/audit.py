"""The access log: append-only entries hash-chained per patient, the per-patient chain head, and the
batches of heads anchored on chain as one Merkle root.

An entry's `canonical` bytes are what its hash commits to (see access/audit/log.py for the encoding); the
other columns are copies kept for queries. Entries are never updated or deleted by the application.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessAction(models.TextChoices):
    OPEN = "open"
    DENY = "deny"
    LIST = "list"
    EXPORT = "export"
    CREATE = "create"
    BREAK_GLASS = "break_glass"
    TAMPER = "tamper"
    RELEASE = "release"  # records released (keys sealed to a hospital) for a training job
    PREDICT = "predict"  # a model version answered a doctor about the patient (federated/predictions.py)


class AccessOutcome(models.TextChoices):
    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


class AccessPurpose(models.TextChoices):
    """Why an access happened, as the log names it: a consent purpose, or the owner, or an emergency."""

    TREATMENT = "TREATMENT"
    TRAINING = "TRAINING"
    OWNER = "OWNER"
    EMERGENCY = "EMERGENCY"


class LegalBasisKind(models.TextChoices):
    OWNER = "owner"
    CONSENT = "consent"
    BREAK_GLASS = "break_glass"
    NONE = "none"


class LegalBasis(str):
    """What allowed an access (or "none"), built by the named constructors and nowhere else.

    It IS its stored, hash-chained text, which must never change: "owner", "consent:<uuid>@<block>",
    "break_glass:<id>" or "none". Being a `str`, it goes into the canonical JSON, the database column
    and API bodies as exactly that text; `parse` reads a stored one back.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> LegalBasis:
        kind, sep, rest = text.partition(":")
        well_formed = (
            (not sep and kind in (LegalBasisKind.OWNER, LegalBasisKind.NONE))
            or (kind == LegalBasisKind.BREAK_GLASS and bool(rest))
            or (kind == LegalBasisKind.CONSENT and bool(rest.rpartition("@")[0]))
        )
        if not well_formed:
            raise ValueError(f"not a legal basis: {text!r}")
        return super().__new__(cls, text)

    @classmethod
    def owner(cls) -> LegalBasis:
        return cls(LegalBasisKind.OWNER.value)

    @classmethod
    def consent(cls, consent_id: uuid.UUID | str, block: int | None) -> LegalBasis:
        return cls(f"consent:{consent_id}@{block}")

    @classmethod
    def break_glass(cls, break_glass_id: uuid.UUID | str) -> LegalBasis:
        return cls(f"break_glass:{break_glass_id}")

    @classmethod
    def none(cls) -> LegalBasis:
        return cls(LegalBasisKind.NONE.value)

    @classmethod
    def parse(cls, text: str) -> LegalBasis:
        """A stored basis read back; raises ValueError on text no constructor could have made."""
        return text if isinstance(text, LegalBasis) else cls(text)

    @property
    def kind(self) -> LegalBasisKind:
        return LegalBasisKind(self.partition(":")[0])

    @property
    def ref(self) -> str:
        """The consent id or break-glass id ("" for owner and none)."""
        rest = self.partition(":")[2]
        return rest.rpartition("@")[0] if self.kind == LegalBasisKind.CONSENT else rest

    @property
    def block(self) -> int | None:
        """The block a consent basis became active in."""
        if self.kind != LegalBasisKind.CONSENT:
            return None
        block = self.rpartition("@")[2]
        return int(block) if block.isdigit() else None

    @property
    def is_break_glass(self) -> bool:
        return self.kind == LegalBasisKind.BREAK_GLASS


class AccessLogEntry(models.Model):
    patient_address = models.CharField(max_length=42)
    seq = models.PositiveBigIntegerField(help_text="1, 2, 3... within the patient's chain.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="accesses_made"
    )
    actor_address = models.CharField(max_length=42, blank=True)
    action = models.CharField(max_length=16, choices=AccessAction.choices)
    purpose = models.CharField(max_length=16)
    outcome = models.CharField(max_length=8, choices=AccessOutcome.choices)
    legal_basis = models.CharField(max_length=120)
    record_id = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    detail = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The exact bytes the hash commits to, and sha256(prev entry_hash || canonical).
    canonical = models.BinaryField()
    entry_hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient_address", "seq"], name="access_log_one_entry_per_seq")
        ]
        indexes = [
            models.Index(fields=["actor", "created_at"], name="access_log_actor_idx"),
            models.Index(fields=["record_id"], name="access_log_record_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_address}#{self.seq} {self.action} {self.outcome}"


class AuditChainHead(models.Model):
    """The latest entry of one patient's chain; locked (select_for_update) by writers of that patient only."""

    patient_address = models.CharField(max_length=42, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.BinaryField(max_length=32)
    anchored_seq = models.PositiveBigIntegerField(default=0, help_text="Last seq put into an anchor batch.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["anchored_seq", "seq"], name="audit_head_unanchored_idx")]

    def __str__(self) -> str:
        return f"head {self.patient_address}#{self.seq}"


class AuditBatchStatus(models.TextChoices):
    QUEUED = "queued"  # outbox item waiting for the chain
    ANCHORED = "anchored"  # AuditRootAnchored indexed
    FAILED = "failed"


class AuditAnchorBatch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch_id = models.CharField(max_length=66, unique=True, help_text="0x-hex bytes32 sent with the root.")
    root = models.CharField(max_length=66)
    head_count = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=AuditBatchStatus.choices, default=AuditBatchStatus.QUEUED
    )
    outbox = models.ForeignKey("contracts.OutboxItem", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    anchored_block = models.BigIntegerField(null=True)
    anchored_tx_hash = models.CharField(max_length=66, blank=True)
    anchored_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"audit batch {self.batch_id[:10]} ({self.head_count} heads, {self.status})"


class AuditAnchorLeaf(models.Model):
    """One chain head as it went into a batch's Merkle tree."""

    batch = models.ForeignKey(AuditAnchorBatch, on_delete=models.PROTECT, related_name="leaves")
    position = models.PositiveIntegerField()
    patient_address = models.CharField(max_length=42)
    seq = models.PositiveBigIntegerField()
    head_hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="audit_leaf_position_unique")
        ]
        indexes = [models.Index(fields=["patient_address", "seq"], name="audit_leaf_patient_idx")]

    def __str__(self) -> str:
        return f"leaf {self.position} {self.patient_address}#{self.seq}"
