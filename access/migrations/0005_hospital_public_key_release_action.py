"""Hospitals keep their account's public key (dataset releases are sealed to it), and the access log
knows the action "release". The new action is a choice only: no SQL, so the access log table (and its
append-only triggers, see 0004) is not rebuilt."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("access", "0004_access_log_append_only")]

    operations = [
        migrations.AddField(
            model_name="hospital",
            name="account_public_key",
            field=models.CharField(blank=True, default="", max_length=66),
        ),
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
                ],
                max_length=16,
            ),
        ),
    ]
