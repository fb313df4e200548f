"""Serializers of the access-log API: an entry as the patient reads it (from its canonical bytes)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from access.audit.log import entry_content
from access.models import AccessAction, AccessLogEntry
from healthhash.query import QuerySerializer


class ActorOut(serializers.Serializer):
    username = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    address = serializers.CharField(allow_blank=True)


class AccessLogEntryOut(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.CharField(help_text="ISO 8601 UTC instant")
    actor = ActorOut()
    action = serializers.ChoiceField(choices=AccessAction.choices)
    purpose = serializers.CharField()
    outcome = serializers.CharField()
    legal_basis = serializers.CharField(
        help_text='"owner", "consent:<uuid>@<block>", "break_glass:<id>" or "none"'
    )
    record_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    detail = serializers.JSONField(allow_null=True)
    entry_hash = serializers.CharField(help_text="0x-hex sha256(previous entry_hash || canonical bytes)")
    anchored = serializers.BooleanField(help_text="Covered by a Merkle root indexed from the chain.")

    def to_representation(self, entry: AccessLogEntry) -> dict[str, Any]:
        content = entry_content(entry)
        actor = content.get("actor") or {}
        return {
            "seq": content["seq"],
            "at": content["at"],
            "actor": {
                "username": actor.get("username"),
                "role": actor.get("role"),
                "address": actor.get("address") or "",
            },
            "action": content["action"],
            "purpose": content["purpose"],
            "outcome": content["outcome"],
            "legal_basis": content["legal_basis"],
            "record_id": content["record"],
            "reason": content["reason"],
            "detail": content["detail"],
            "entry_hash": "0x" + bytes(entry.entry_hash).hex(),
            "anchored": entry.seq <= self.context.get("anchored_up_to", 0),
        }


class AccessLogQuery(QuerySerializer):
    action = serializers.ChoiceField(choices=AccessAction.choices, required=False)
    format = serializers.ChoiceField(
        choices=["json", "csv", "fhir"], required=False, help_text="csv or fhir: the whole log as a download"
    )
