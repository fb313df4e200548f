"""A doctor asks a training job's model about one patient: benign or malignant from the 30 WDBC features.

The features come from the patient's laboratory Observations that the doctor may open for TREATMENT, each
opened through THE one door (ehr.records.open_record: it decides by the consent rule or a live break-glass,
logs the open in the patient's access log, verifies and decrypts); there is no batch form of the door, so
one open per record. The answering model is the job's latest version confirmed on chain (else its latest),
loaded from the content store and checked against its weights hash. The prediction itself is one more
entry in the patient's access log (action "predict", the legal basis the opens had).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from django.db import transaction

from access.audit import log as audit
from access.audit.decisions import AccessDecision
from access.models import AccessAction, AccessPurpose, Role, User
from ehr import records as record_door
from ehr import store
from ehr.models import FHIR_JSON, Record
from ehr.record_selectors import records_visible_to
from federated import features, weights_format
from federated.models import ModelVersion, TrainingJob
from federated.networks import InvalidPlan, TabularClassifier, load_model
from federated.plan import canonical_json
from federated.selectors import answering_version
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound

# WDBC measurements are laboratory Observations (demo/charts.py); other records are never opened here.
_OBSERVATION = "Observation"
_LABORATORY = "laboratory"
_THRESHOLD = 0.5


class MissingFeatures(DomainError):
    code = "missing_features"


class UnknownPatient(NotFound):
    code = "unknown_patient"


class BrokenModel(Conflict):
    """The stored weights are not the version's (hash) or do not fit its model: never used to answer."""

    code = "broken_model"


@dataclass(frozen=True)
class Prediction:
    job: TrainingJob
    version: ModelVersion
    probability: float  # of malignant
    label: str  # "malignant" | "benign"
    records_used: int


def _observations(doctor: User, patient_address: str) -> list[Record]:
    """The patient's FHIR laboratory Observations the doctor may open (by the rule's queryset form), oldest
    first; when there is none, the door is asked about one of them, so a doctor without consent gets the
    door's answer (and the patient's log its denial)."""
    candidates = Record.objects.filter(
        patient_address=patient_address,
        resource_type=_OBSERVATION,
        category=_LABORATORY,
        content_type=FHIR_JSON,
    ).order_by("created_at", "id")
    visible = list(
        records_visible_to(doctor).filter(pk__in=candidates.values("pk")).order_by("created_at", "id")
    )
    if visible:
        return visible
    probe = candidates.first()
    if probe is None:
        if not records_visible_to(doctor).filter(patient_address=patient_address).exists():
            raise UnknownPatient(
                "No such patient, or none of their records is yours to open.", field="patient"
            )
        return []
    # The door's 403 (no_consent, expired, revoked) or 404, whose denial it logs; should access have appeared
    # meanwhile, the record is opened (and logged) once more when the row is read: harmless.
    try:
        record_door.open_record(record_id=probe.id, actor=doctor, purpose=AccessPurpose.TREATMENT)
    except NotFound:
        raise UnknownPatient(
            "No such patient, or none of their records is yours to open.", field="patient"
        ) from None
    return [probe]


def _feature_row(doctor: User, rows: list[Record]) -> tuple[list[float], AccessDecision | None]:
    """Open each record through the door; the latest value of each feature wins."""
    values: dict[int, float] = {}
    decision = None
    for row in rows:
        opened = record_door.open_record(record_id=row.id, actor=doctor, purpose=AccessPurpose.TREATMENT)
        decision = decision or opened.decision
        contribution = features.contribution_of(opened.resource)
        if contribution is not None and contribution[0] != features.LABEL:
            values[contribution[0]] = contribution[1]
    missing = [name for index, name in enumerate(features.FEATURE_NAMES) if index not in values]
    if missing:
        raise MissingFeatures(
            f"The patient's records you may open lack {len(missing)} of the {features.N_FEATURES} features: "
            + ", ".join(missing)
            + ".",
            field="patient",
        )
    return [values[index] for index in range(features.N_FEATURES)], decision


def stored_weights(version: ModelVersion) -> bytes:
    """The version's weights from the content store, checked against its weights hash (409 otherwise)."""
    return _checked_bytes(version.cid, version.weights_hash)


def _checked_bytes(cid: str, weights_hash: str) -> bytes:
    data = store.cat(cid)
    if "0x" + hashlib.sha256(data).hexdigest() != weights_hash.lower():
        raise BrokenModel("The stored weights do not match the model version's weights hash.")
    return data


@lru_cache(maxsize=16)
def _model_of(cid: str, weights_hash: str, spec_json: bytes) -> TabularClassifier:
    """A version's model, loaded once per process (a version is immutable: its bytes are its hash)."""
    data = _checked_bytes(cid, weights_hash)
    try:
        model = load_model(spec=json.loads(spec_json), weights=weights_format.load(data))
    except (weights_format.BadWeights, InvalidPlan) as exc:
        raise BrokenModel(f"The model version's weights cannot be loaded: {exc}") from exc
    return model.eval()


def _probability(version: ModelVersion, row: list[float]) -> float:
    model = _model_of(version.cid, version.weights_hash, canonical_json(version.job.model_spec))
    with torch.no_grad():
        logit = model(torch.tensor([row], dtype=torch.float32))
    probability = float(torch.sigmoid(logit)[0])
    if not math.isfinite(probability):
        raise BrokenModel("The model version answered a non-finite probability.")
    return probability


def predict(*, doctor: User, job: TrainingJob, patient_address: str) -> Prediction:
    """The job's answering version on the patient's features (`patient_address` checksummed)."""
    if doctor.role != Role.DOCTOR:
        raise Forbidden("Only a doctor asks for a prediction.", code="not_a_doctor")
    version = answering_version(job)
    if not User.objects.filter(eth_address=patient_address, role=Role.PATIENT).exists():
        raise UnknownPatient("No such patient, or none of their records is yours to open.", field="patient")
    rows = _observations(doctor, patient_address)
    row, decision = _feature_row(doctor, rows)
    assert decision is not None  # a complete row came from at least one opened record
    probability = _probability(version, row)
    label = "malignant" if probability >= _THRESHOLD else "benign"
    with transaction.atomic():
        audit.log_decision(
            decision,
            patient_address=patient_address,
            actor=doctor,
            action=AccessAction.PREDICT,
            detail={
                "job": job.job_id,
                "round": version.round,
                "weights_hash": version.weights_hash,
                "records": len(rows),
            },
        )
    return Prediction(job, version, probability, label, len(rows))
