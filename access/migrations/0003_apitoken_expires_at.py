"""API tokens expire: tokens minted before this migration get 30 days from their creation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import migrations, models

# The default of API_TOKEN_TTL_DAYS when this migration was written; settings are not read in migrations.
_LEGACY_TTL = timedelta(days=30)


def _expire_old_tokens(apps: Any, schema_editor: Any) -> None:
    ApiToken = apps.get_model("access", "ApiToken")
    for token in ApiToken.objects.filter(expires_at__isnull=True).only("pk", "created_at"):
        ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at + _LEGACY_TTL)


class Migration(migrations.Migration):
    dependencies = [("access", "0002_access_log_breakglass_requests")]

    operations = [
        migrations.AddField(model_name="apitoken", name="expires_at", field=models.DateTimeField(null=True)),
        migrations.RunPython(_expire_old_tokens, migrations.RunPython.noop),
        migrations.AlterField(model_name="apitoken", name="expires_at", field=models.DateTimeField()),
    ]
