"""Serializers of the training API: input shapes, the references every answer shares (hospital, job, chain),
and jobs with their rounds as clients see them (models and training use: model_serializers.py). Hashes and
ids are "0x" hex text; blocks are integers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from federated.models import ModelVersion, RoundUpdate, TrainingRound
from federated.services import TASKS
from healthhash.eth_address import EthAddressField
from healthhash.pagination import MAX_LIMIT, MAX_OFFSET
from healthhash.query import QuerySerializer

# Bounds at the edge, so no value overflows a database column; the plan's own rules are the service's.
_MAX_EPOCHS = 1_000
_MAX_BATCH = 1_000_000
_MAX_ROUNDS = 10_000
_MAX_HOSPITALS = 100
_MAX_TIMEOUT_S = 7 * 24 * 3600
_PLAN_FIELDS = {
    "task": "task",
    "model": "model_spec",
    "strategy": "strategy_spec",
    "local_epochs": "local_epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "rounds": "rounds",
    "quorum": "quorum",
    "round_timeout_s": "round_timeout_s",
    "dp": "dp",
}


# --------------------------------------------------------------------------- input


class PlanIn(serializers.Serializer):
    """The plan members, named as in the job's body (`model`, `strategy`), all optional: a PATCH."""

    task = serializers.ChoiceField(choices=list(TASKS), required=False)
    model = serializers.DictField(
        required=False, help_text='{"name": "logistic"} or {"name": "mlp", "hidden": [32]}'
    )
    strategy = serializers.DictField(required=False, help_text='{"name": "fedavg"}, "fedprox", "median", ...')
    local_epochs = serializers.IntegerField(required=False, min_value=1, max_value=_MAX_EPOCHS)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=_MAX_BATCH)
    lr = serializers.FloatField(required=False, min_value=0.0, max_value=1e6)
    rounds = serializers.IntegerField(required=False, min_value=1, max_value=_MAX_ROUNDS)
    quorum = serializers.IntegerField(required=False, min_value=1, max_value=_MAX_HOSPITALS)
    round_timeout_s = serializers.IntegerField(required=False, min_value=1, max_value=_MAX_TIMEOUT_S)
    dp = serializers.DictField(
        required=False, allow_null=True, help_text="DP-SGD settings (federated.privacy.DPConfig), or null."
    )

    def plan_changes(self) -> dict[str, Any]:
        """The validated members as keywords of federated.services (`model` -> `model_spec`, ...)."""
        return {
            _PLAN_FIELDS[name]: value for name, value in self.validated_data.items() if name in _PLAN_FIELDS
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = (
            sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        )
        if unknown:
            raise serializers.ValidationError({unknown[0]: f"{unknown[0]!r} is not a member of the plan"})
        return attrs


class JobCreateIn(PlanIn):
    name = serializers.CharField(max_length=200)
    hospitals = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        min_length=1,
        max_length=_MAX_HOSPITALS,
        help_text="Slugs of the participating hospitals (yours among them).",
    )
    model = serializers.DictField(help_text='{"name": "logistic"} or {"name": "mlp", "hidden": [32]}')
    strategy = serializers.DictField(help_text='{"name": "fedavg"}, "fedprox", "median", ...')
    local_epochs = serializers.IntegerField(min_value=1, max_value=_MAX_EPOCHS)
    batch_size = serializers.IntegerField(min_value=1, max_value=_MAX_BATCH)
    lr = serializers.FloatField(min_value=0.0, max_value=1e6)
    rounds = serializers.IntegerField(min_value=1, max_value=_MAX_ROUNDS)
    quorum = serializers.IntegerField(min_value=1, max_value=_MAX_HOSPITALS)
    round_timeout_s = serializers.IntegerField(min_value=1, max_value=_MAX_TIMEOUT_S)


class PlanApprovalIn(serializers.Serializer):
    password = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=1024, help_text="Unlocks your managed key."
    )


class StartIn(serializers.Serializer):
    schedule = serializers.DictField(
        required=False,
        allow_null=True,
        help_text='{"kind": "now"} (default: the stored one), {"kind": "at", "at": ISO 8601 with zone} or '
        '{"kind": "periodic", "every_s": seconds}.',
    )


class PredictIn(serializers.Serializer):
    patient = EthAddressField(help_text="The patient's Ethereum address.")


class PageQuery(QuerySerializer):
    # Documents the parameters; StrictLimitOffsetPagination is what reads and checks them.
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, help_text="Page size (default 50)."
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


# --------------------------------------------------------------------------- output: pieces


class HospitalRefOut(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    hospital_id = serializers.CharField(help_text="The Directory's bytes32 id.")


class ChainRefOut(serializers.Serializer):
    status = serializers.CharField(help_text='"" (not queued yet), queued, confirmed or failed.')
    block = serializers.IntegerField(allow_null=True)
    tx = serializers.CharField(help_text="Transaction hash, empty until confirmed.")


def chain_ref(row: RoundUpdate | ModelVersion) -> dict[str, Any]:
    return {"status": row.chain_status, "block": row.chain_block, "tx": row.chain_tx}


class JobRefOut(serializers.Serializer):
    id = serializers.CharField(source="job_id", help_text="The job's on-chain id (0x + 64 hex).")
    number = serializers.IntegerField(source="pk")
    name = serializers.CharField()


class ParticipantOut(serializers.Serializer):
    hospital = HospitalRefOut()
    approval = serializers.CharField(help_text="pending, queued, approved or failed.")
    approval_plan_hash = serializers.CharField()
    approved_block = serializers.IntegerField(allow_null=True)
    approved_tx = serializers.CharField()


class RoundUpdateOut(serializers.Serializer):
    hospital = serializers.CharField(source="hospital.slug")
    status = serializers.CharField(help_text="dispatched, accepted, rejected, refused, sat_out or straggler.")
    reason_code = serializers.CharField()
    reason_detail = serializers.CharField()
    update_id = serializers.CharField()
    cid = serializers.CharField()
    weights_hash = serializers.CharField()
    sample_count = serializers.IntegerField(allow_null=True)
    patient_root = serializers.CharField()
    pinned_block = serializers.IntegerField(allow_null=True)
    epsilon = serializers.FloatField(allow_null=True, help_text="DP epsilon spent by this round, if DP.")
    metrics = serializers.JSONField()
    timings = serializers.JSONField()
    received_at = serializers.DateTimeField(allow_null=True)
    chain = serializers.SerializerMethodField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, update: RoundUpdate) -> dict[str, Any]:
        return chain_ref(update)


class RoundOut(serializers.Serializer):
    number = serializers.IntegerField()
    kind = serializers.CharField(help_text="moments (round 0) or train.")
    status = serializers.CharField()
    pinned_block = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    deadline_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    timings = serializers.JSONField(help_text="dispatch_s, local_training_s, upload_s, chain_s, ...")
    metrics = serializers.JSONField(help_text="test split metrics and each hospital's validation metrics.")
    sample_count = serializers.SerializerMethodField()
    hospitals = serializers.SerializerMethodField()
    stragglers = serializers.SerializerMethodField()
    updates = RoundUpdateOut(many=True)

    @extend_schema_field(OpenApiTypes.INT)
    def get_sample_count(self, training_round: TrainingRound) -> int:
        """Training rows of the accepted updates."""
        return sum(
            u.sample_count or 0
            for u in training_round.updates.all()
            if u.status == RoundUpdate.Status.ACCEPTED
        )

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_hospitals(self, training_round: TrainingRound) -> dict[str, int]:
        """{"dispatched": n, "accepted": n}: how many hospitals were asked and how many updates counted."""
        updates = list(training_round.updates.all())
        accepted = sum(1 for u in updates if u.status == RoundUpdate.Status.ACCEPTED)
        return {"dispatched": len(updates), "accepted": accepted}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_stragglers(self, training_round: TrainingRound) -> list[str]:
        return [
            u.hospital.slug for u in training_round.updates.all() if u.status == RoundUpdate.Status.STRAGGLER
        ]


class VersionSummaryOut(serializers.Serializer):
    round = serializers.IntegerField()
    cid = serializers.CharField()
    weights_hash = serializers.CharField()
    metrics = serializers.JSONField()
    chain = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, version: ModelVersion) -> dict[str, Any]:
        return chain_ref(version)


# --------------------------------------------------------------------------- output: jobs


class JobOut(serializers.Serializer):
    id = serializers.CharField(source="job_id", help_text="The job's on-chain id (0x + 64 hex).")
    number = serializers.IntegerField(source="pk", help_text="The job's number; the id works too in URLs.")
    name = serializers.CharField()
    task = serializers.CharField()
    status = serializers.CharField(help_text="draft, approving, ready, running, done, failed or cancelled.")
    failure_reason = serializers.CharField()
    plan_hash = serializers.CharField()
    model = serializers.JSONField(source="model_spec")
    strategy = serializers.JSONField(source="strategy_spec")
    local_epochs = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    lr = serializers.FloatField()
    rounds = serializers.IntegerField()
    quorum = serializers.IntegerField()
    round_timeout_s = serializers.IntegerField()
    dp = serializers.JSONField(allow_null=True)
    schedule = serializers.JSONField()
    current_round = serializers.IntegerField()
    retrain_of = serializers.CharField(source="retrain_of.job_id", allow_null=True, default=None)
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    participants = ParticipantOut(many=True)


class JobDetailOut(JobOut):
    training_rounds = RoundOut(many=True, help_text="Round 0 pools feature moments; 1..N train.")
    model_versions = VersionSummaryOut(many=True)


class JobPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = JobOut(many=True)
