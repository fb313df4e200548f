"""AuditLostBatch: anchor batches on chain that a restored database no longer holds (issue 16)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0006_access_action_predict"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditLostBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "batch_id",
                    models.CharField(help_text="0x-hex bytes32 of the event.", max_length=66, unique=True),
                ),
                ("root", models.CharField(max_length=66)),
                ("head_count", models.PositiveIntegerField()),
                ("block_number", models.BigIntegerField()),
                ("tx_hash", models.CharField(max_length=66)),
                ("anchored_at", models.DateTimeField(help_text="The block's time.", null=True)),
                ("found_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["block_number", "batch_id"],
            },
        ),
    ]
