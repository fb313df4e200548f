"""Serializers of the model API (versions, provenance, predictions) and of a patient's training use; the
shared pieces (hospital, job and chain references) are in federated/api/serializers.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from federated.api.serializers import (
    ChainRefOut,
    HospitalRefOut,
    JobRefOut,
    VersionSummaryOut,
    chain_ref,
)
from federated.models import RoundUpdate
from federated.provenance import Provenance

# --------------------------------------------------------------------------- output: models


class LineageUpdateOut(serializers.Serializer):
    update_id = serializers.CharField()
    round = serializers.IntegerField(source="round.number")
    hospital = serializers.CharField(source="hospital.slug")
    sample_count = serializers.IntegerField(allow_null=True)
    patient_root = serializers.CharField(
        help_text="Merkle root of the update's patients (OpenZeppelin tree)."
    )
    pinned_block = serializers.IntegerField(allow_null=True)
    weights_hash = serializers.CharField()
    chain = serializers.SerializerMethodField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, update: RoundUpdate) -> dict[str, Any]:
        return chain_ref(update)


class FlaggedOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Patients whose TRAINING consent ended since they were used.")
    by_hospital = serializers.DictField(child=serializers.IntegerField())


class ProvenanceSummaryOut(serializers.Serializer):
    hospitals = serializers.SerializerMethodField()
    rounds = serializers.ListField(child=serializers.IntegerField(), help_text="Rounds it descends from.")
    averages = LineageUpdateOut(many=True, help_text="The updates this version itself averaged.")
    flagged = serializers.SerializerMethodField()

    @extend_schema_field(HospitalRefOut(many=True))
    def get_hospitals(self, provenance: Provenance) -> list[dict[str, Any]]:
        return HospitalRefOut(provenance.hospitals, many=True).data  # type: ignore[return-value]

    @extend_schema_field(FlaggedOut)
    def get_flagged(self, provenance: Provenance) -> dict[str, Any]:
        return {"count": provenance.flagged_total, "by_hospital": provenance.flagged}


class ProvenanceOut(ProvenanceSummaryOut):
    updates = LineageUpdateOut(
        many=True, help_text="Every update it descends from (this round's and every earlier version's)."
    )


class VersionListItemOut(serializers.Serializer):
    """A version in its job's list: the provenance summed up (its own updates, hospitals, rounds, flagged);
    GET .../versions/{round} lists every update of its lineage."""

    job = JobRefOut(source="version.job")
    round = serializers.IntegerField(source="version.round")
    cid = serializers.CharField(source="version.cid")
    weights_hash = serializers.CharField(source="version.weights_hash")
    metrics = serializers.JSONField(source="version.metrics")
    metrics_hash = serializers.CharField(source="version.metrics_hash")
    updates_root = serializers.CharField(source="version.updates_root")
    created_at = serializers.DateTimeField(source="version.created_at")
    chain = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField()
    weights_url = serializers.SerializerMethodField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, provenance: Provenance) -> dict[str, Any]:
        return chain_ref(provenance.version)

    @extend_schema_field(ProvenanceSummaryOut)
    def get_provenance(self, provenance: Provenance) -> dict[str, Any]:
        return ProvenanceSummaryOut(provenance).data

    @extend_schema_field(OpenApiTypes.STR)
    def get_weights_url(self, provenance: Provenance) -> str:
        version = provenance.version
        return f"/api/models/{version.job.job_id}/versions/{version.round}/weights"


class VersionOut(VersionListItemOut):
    """One version with its whole lineage."""

    @extend_schema_field(ProvenanceOut)
    def get_provenance(self, provenance: Provenance) -> dict[str, Any]:
        return ProvenanceOut(provenance).data


class ModelJobOut(serializers.Serializer):
    job = JobRefOut(source="*")
    status = serializers.CharField()
    version_count = serializers.IntegerField()
    latest_round = serializers.IntegerField()
    latest = serializers.SerializerMethodField()

    @extend_schema_field(VersionSummaryOut)
    def get_latest(self, job: Any) -> dict[str, Any]:
        """The latest version (the list prefetches each job's versions, newest first)."""
        return VersionSummaryOut(job.model_versions.all()[0]).data


class ModelPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ModelJobOut(many=True)


class ModelDetailOut(serializers.Serializer):
    job = JobRefOut()
    status = serializers.CharField()
    versions = VersionListItemOut(many=True)


class PredictionOut(serializers.Serializer):
    probability = serializers.FloatField(help_text="Probability of malignant, in [0, 1].")
    # Declared fields leave the class namespace (DRF's metaclass), so this shadows no Field.label at run time.
    label = serializers.ChoiceField(choices=["malignant", "benign"])  # type: ignore[assignment]
    job = JobRefOut()
    round = serializers.IntegerField(source="version.round")
    cid = serializers.CharField(source="version.cid")
    weights_hash = serializers.CharField(source="version.weights_hash")
    chain = serializers.SerializerMethodField()
    records_used = serializers.IntegerField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, prediction: Any) -> dict[str, Any]:
        return chain_ref(prediction.version)


# --------------------------------------------------------------------------- output: training use


class InclusionOut(serializers.Serializer):
    update_id = serializers.CharField(source="update.update_id")
    job = JobRefOut(source="update.round.job")
    round = serializers.IntegerField(source="update.round.number")
    hospital = HospitalRefOut(source="update.hospital")
    pinned_block = serializers.IntegerField(source="update.pinned_block", allow_null=True)
    sample_count = serializers.IntegerField(source="update.sample_count", allow_null=True)
    patient_root = serializers.CharField(source="update.patient_root")
    leaf = serializers.SerializerMethodField()
    proof = serializers.SerializerMethodField()
    root_matches = serializers.BooleanField(source="matches_update_root")
    chain = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_leaf(self, inclusion: Any) -> str:
        """keccak256(keccak256(abi.encode(address))): OpenZeppelin's StandardMerkleTree leaf."""
        return "0x" + inclusion.leaf.hex()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_proof(self, inclusion: Any) -> list[str]:
        """Sibling hashes, leaf to root: MerkleProof.verify(proof, patient_root, leaf)."""
        return ["0x" + node.hex() for node in inclusion.proof]

    @extend_schema_field(ChainRefOut)
    def get_chain(self, inclusion: Any) -> dict[str, Any]:
        return chain_ref(inclusion.update)


class VersionUseOut(serializers.Serializer):
    job = JobRefOut(source="version.job")
    round = serializers.IntegerField(source="version.round")
    cid = serializers.CharField(source="version.cid")
    weights_hash = serializers.CharField(source="version.weights_hash")
    chain = serializers.SerializerMethodField()
    learned_from = serializers.SerializerMethodField()

    @extend_schema_field(ChainRefOut)
    def get_chain(self, use: Any) -> dict[str, Any]:
        return chain_ref(use.version)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_learned_from(self, use: Any) -> list[str]:
        """The update ids (in `updates`) of mine this version descends from."""
        return [inclusion.update.update_id for inclusion in use.learned_from]


class ConsentStateOut(serializers.Serializer):
    hospital = HospitalRefOut()
    active = serializers.BooleanField(help_text="My TRAINING consent for this hospital is in force now.")
    consent_ids = serializers.ListField(child=serializers.UUIDField(), help_text="Revoke these to opt out.")
    revoke = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_revoke(self, state: Any) -> list[str]:
        """POST each with your password or a wallet signature (see /api/consents/{id}/revoke)."""
        return [f"/api/consents/{consent_id}/revoke" for consent_id in state.consent_ids]


class TrainingUseOut(serializers.Serializer):
    patient = serializers.CharField(source="patient_address")
    updates = InclusionOut(many=True, source="inclusions")
    versions = VersionUseOut(many=True)
    consents = ConsentStateOut(many=True)
