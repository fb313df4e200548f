"""The access log knows the action "predict" (a training job's model answered a doctor about the patient).
A choice only: no SQL, so the access log table (and its append-only triggers, see 0004) is not rebuilt."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("access", "0005_hospital_public_key_release_action")]

    operations = [
        migrations.AlterField(
            model_name="accesslogentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("open", "Open"),
                    ("deny", "Deny"),
                    ("list", "List"),
                    ("export", "Export"),
                    ("create", "Create"),
                    ("break_glass", "Break Glass"),
                    ("tamper", "Tamper"),
                    ("release", "Release"),
                    ("predict", "Predict"),
                ],
                max_length=16,
            ),
        ),
    ]
