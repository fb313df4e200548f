"""Deployment remembers the chain it was made on (genesis and deployment block hashes) and its code hash."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contracts", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="genesis_hash",
            field=models.CharField(blank=True, max_length=66),
        ),
        migrations.AddField(
            model_name="deployment",
            name="block_hash",
            field=models.CharField(blank=True, max_length=66),
        ),
        migrations.AddField(
            model_name="deployment",
            name="code_hash",
            field=models.CharField(blank=True, help_text="keccak256 of the runtime code", max_length=66),
        ),
    ]
