"""Anchor batches the chain holds and this database does not: what a restore from an older backup lost.

The indexer records one row per AuditRootAnchored event whose batch id no AuditAnchorBatch has (the event
is the chain's only remaining trace of it); the access-log writer reads the rows to skip the sequence
numbers such a batch may commit to (access/audit/batch_ids.py, access/audit/log.py).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditLostBatch(models.Model):
    batch_id = models.CharField(max_length=66, unique=True, help_text="0x-hex bytes32 of the event.")
    root = models.CharField(max_length=66)
    head_count = models.PositiveIntegerField()
    block_number = models.BigIntegerField()
    tx_hash = models.CharField(max_length=66)
    anchored_at = models.DateTimeField(null=True, help_text="The block's time.")
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["block_number", "batch_id"]

    def __str__(self) -> str:
        return f"lost audit batch {self.batch_id[:10]} (block {self.block_number})"
