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

    `digest` is the SHA-256 of the sealed bytes (what is anchored on chain); `anchored_digest` and
    `anchored_block` are filled by the indexer from the Anchors contract's RecordAnchored event.
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

    anchor_outbox = models.ForeignKey(
        "contracts.OutboxItem", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    anchored_block = models.BigIntegerField(null=True, blank=True)
    anchored_digest = models.CharField(max_length=64, blank=True)
    # Set when the chain refused our digest (AnchorSkipped): e.g. DigestMismatch is a tamper alert.
    anchor_error = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["patient_address", "category", "created_at"], name="record_patient_idx"),
            models.Index(fields=["patient", "created_at"], name="record_owner_idx"),
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
        """The chain holds another digest for this record than the one we sealed: tampering somewhere."""
        return self.anchor_error == "DigestMismatch" or bool(
            self.anchored_digest and self.anchored_digest != self.digest
        )
