"""Records are anchored as Merkle roots of batches (ehr.anchoring) instead of one digest each.

Records anchored one by one lose that mark and are batched again (the Anchors contract that held their
digests is replaced; deployments are redeployed). Per-record outbox items still pending are failed as
"superseded": their kind no longer exists. Drain the outbox before migrating, so none is in flight.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def rebatch_records(apps, schema_editor):
    Record = apps.get_model("ehr", "Record")
    OutboxItem = apps.get_model("contracts", "OutboxItem")
    Record.objects.exclude(anchored_block=None, anchor_error="").update(anchored_block=None, anchor_error="")
    OutboxItem.objects.filter(kind="anchor.record", status="pending").update(
        status="failed",
        error_code="superseded",
        error_detail="records are anchored in Merkle batches now (ehr.anchoring)",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0001_initial"),
        ("ehr", "0002_record_creator_idx"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="record",
            name="anchor_outbox",
        ),
        migrations.RemoveField(
            model_name="record",
            name="anchored_digest",
        ),
        migrations.AddField(
            model_name="record",
            name="anchor_position",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="record",
            name="anchor_proof",
            field=models.BinaryField(blank=True, default=b""),
        ),
        migrations.CreateModel(
            name="RecordAnchorBatch",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                (
                    "batch_id",
                    models.CharField(
                        help_text="0x-hex bytes32 sent with the root.", max_length=66, unique=True
                    ),
                ),
                ("root", models.CharField(max_length=66)),
                ("record_count", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[("queued", "Queued"), ("anchored", "Anchored"), ("failed", "Failed")],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("anchored_root", models.CharField(blank=True, max_length=66)),
                ("anchored_block", models.BigIntegerField(blank=True, null=True)),
                ("anchored_tx_hash", models.CharField(blank=True, max_length=66)),
                ("anchored_at", models.DateTimeField(blank=True, null=True)),
                (
                    "outbox",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="contracts.outboxitem",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at"],
            },
        ),
        migrations.AddField(
            model_name="record",
            name="anchor_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="records",
                to="ehr.recordanchorbatch",
            ),
        ),
        migrations.RunPython(rebatch_records, migrations.RunPython.noop),
    ]
