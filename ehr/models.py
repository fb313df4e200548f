"""A health record as the database knows it: who it belongs to, where its sealed bytes are, how to unwrap
its key, and what the chain anchored for it. Never the content, never a data key in clear."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.consent.scopes import CATEGORIES

FHIR_JSON = "application/fhir+json"


class Record(models.Model):
    """One sealed record of one patient: a FHIR resource, or a file carried as a DocumentReference.

    `digest` is the SHA-256 of the sealed bytes. Records are anchored in batches (ehr.anchoring): the
    batcher puts the record in a RecordAnchorBatch at `anchor_position` and keeps its Merkle proof; the
    indexer fills `anchored_block` when the batch's RecordRootAnchored event arrives.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="records")
    # Checksummed; the consent check, the access log and the anchor all key on the address.
    patient_address = models.CharField(max_length=42)
    category = models.CharField(max_length=20, choices=[(name, name) for name in CATEGORIES])
    resource_type = models.CharField(max_length=64, help_text="FHIR type: Observation, DocumentReference...")
    content_type = models.CharField(max_length=100, help_text=f"{FHIR_JSON} or the file's type.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="records_written"
    )
    created_at = models.DateTimeField(default=timezone.now)

    cid = models.CharField(max_length=100)
    sealed_size = models.BigIntegerField()
    digest = models.CharField(max_length=64, help_text="sha256 hex of the sealed bytes.")
    wrapped_key = models.BinaryField()
    key_id = models.CharField(max_length=64, help_text="KEK id the data key is wrapped under.")

    anchor_batch = models.ForeignKey(
        "RecordAnchorBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    anchor_position = models.PositiveIntegerField(null=True, blank=True)
    # The Merkle proof of the record's leaf: steps of 33 bytes, b"L" or b"R" (the sibling's side) + sibling.
    anchor_proof = models.BinaryField(default=b"", blank=True)
    # Copied from the batch when its root is indexed, so lists show it without a join.
    anchored_block = models.BigIntegerField(null=True, blank=True)
    # Set when the root indexed for the record's batch differs from the one computed: a tamper alert.
    anchor_error = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["patient_address", "category", "created_at"], name="record_patient_idx"),
            models.Index(fields=["patient", "created_at"], name="record_owner_idx"),
            # The per-actor daily quota (ehr.record_quota) counts an actor's records of the last 24 h.
            models.Index(fields=["created_by", "created_at"], name="record_creator_idx"),
            models.Index(fields=["key_id"], name="record_kek_idx"),
        ]

    def __str__(self) -> str:
        return f"Record {self.id} {self.category} of {self.patient_address}"

    def __repr__(self) -> str:
        # wrapped_key is not secret without the KEK, but it has no business in logs either.
        return f"<Record {self.id} {self.resource_type} {self.category}>"

    @property
    def is_file(self) -> bool:
        return self.content_type != FHIR_JSON

    @property
    def anchor_mismatch(self) -> bool:
        """The chain holds another root for this record's batch than the one computed: tampering somewhere."""
        return bool(self.anchor_error)


class RecordBatchStatus(models.TextChoices):
    QUEUED = "queued"  # outbox item waiting for the chain
    ANCHORED = "anchored"  # RecordRootAnchored indexed
    FAILED = "failed"  # outbox item failed for good: its records went back to the next batch


class RecordAnchorBatch(models.Model):
    """One Merkle root over a batch of records' leaves (ehr.anchoring), anchored by ONE outbox item.

    `root` is what was computed when the batch was built; `anchored_root` is what the indexed
    RecordRootAnchored event says the chain holds (they differ only if something is wrong).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch_id = models.CharField(max_length=66, unique=True, help_text="0x-hex bytes32 sent with the root.")
    root = models.CharField(max_length=66)
    record_count = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=RecordBatchStatus.choices, default=RecordBatchStatus.QUEUED
    )
    outbox = models.ForeignKey("contracts.OutboxItem", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    anchored_root = models.CharField(max_length=66, blank=True)
    anchored_block = models.BigIntegerField(null=True, blank=True)
    anchored_tx_hash = models.CharField(max_length=66, blank=True)
    anchored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"record batch {self.batch_id[:10]} ({self.record_count} records, {self.status})"
