"""Where a model version came from, and which versions learned from a patient.

Lineage: version n of a job averages the updates of round n, each trained from version n-1; so version n
descends from the updates every version 1..n of the job averaged (`ModelVersion.updates`), and through
them from their hospitals, rounds and patient sets (`UpdatePatient`, whose Merkle root each update carries
on chain). Round 0 (pooled feature moments, aggregates only) names no patients.

Flagged: a patient of the lineage whose TRAINING consent for the update's hospital is no longer in force.
"In force" is THE consent rule (access.consent.rule) asked now, in the queryset form a dataset release
uses: a patient counts as still consenting exactly when a release for that hospital made now would include
one of their records. A revocation requested but not yet mined already counts (the rule fails closed).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from access.consent import rule as consent_rule
from access.models import Hospital, Purpose, Role, User
from ehr.models import FHIR_JSON, Record
from federated.models import ModelVersion, RoundUpdate, UpdatePatient
from federated.patient_set import PatientTree, leaf_of
from healthhash.errors import Forbidden


def still_consenting(hospital: Hospital, patients: QuerySet | Iterable[str]) -> QuerySet[Record, Any]:
    """`patient_address` values (repeats possible) of those of `patients` whose TRAINING consent for
    `hospital` is in force now: THE rule's covering consents mapped to their FHIR records, as a release does
    (federated/release.py). `patients` may be a values queryset (kept in SQL) or a list of addresses."""
    consents = consent_rule.covering_consents(
        grantee_address=hospital.account_address, purpose=Purpose.TRAINING
    ).filter(patient_address__in=patients)
    records = Record.objects.filter(patient_address__in=patients, content_type=FHIR_JSON)
    covered = consent_rule.covered_records(consents, records=records)
    return records.filter(covered).values("patient_address")


def _flagged_by_update(updates: Iterable[RoundUpdate]) -> dict[int, set[str]]:
    """Per update (pk): the patients it trained on whose TRAINING consent for its hospital is no longer in
    force. One query per hospital, the patient sets kept in SQL; only flagged addresses come back."""
    by_hospital: dict[int, list[RoundUpdate]] = defaultdict(list)
    for update in updates:
        by_hospital[update.hospital_id].append(update)
    flagged: dict[int, set[str]] = defaultdict(set)
    for hospital_updates in by_hospital.values():
        hospital = hospital_updates[0].hospital
        rows = UpdatePatient.objects.filter(update_id__in=[u.pk for u in hospital_updates])
        gone = rows.exclude(patient_address__in=still_consenting(hospital, rows.values("patient_address")))
        for update_pk, patient in gone.values_list("update_id", "patient_address"):
            flagged[update_pk].add(patient)
    return flagged


@dataclass(frozen=True)
class Provenance:
    """What a version descends from, and how many of those patients no longer consent, per hospital."""

    version: ModelVersion
    updates: list[RoundUpdate]  # the whole lineage
    averages: list[RoundUpdate]  # the updates this version itself averaged (its round's)
    flagged: dict[str, int]  # hospital slug -> distinct patients whose TRAINING consent is no longer in force

    @property
    def hospitals(self) -> list[Hospital]:
        unique = {update.hospital_id: update.hospital for update in self.updates}
        return sorted(unique.values(), key=lambda hospital: hospital.slug)

    @property
    def rounds(self) -> list[int]:
        return sorted({update.round.number for update in self.updates})

    @property
    def flagged_total(self) -> int:
        return sum(self.flagged.values())


def _first_rounds(links: QuerySet) -> dict[int, int]:
    """Update pk -> the round of the first version that averaged it (from version <-> update links)."""
    first: dict[int, int] = {}
    for update_pk, round_number in links.values_list("roundupdate_id", "modelversion__round"):
        first[update_pk] = min(round_number, first.get(update_pk, round_number))
    return first


def _averaged_by(links: QuerySet) -> dict[int, set[int]]:
    """Version pk -> the pks of the updates it averaged."""
    averaged: dict[int, set[int]] = defaultdict(set)
    for version_pk, update_pk in links.values_list("modelversion_id", "roundupdate_id"):
        averaged[version_pk].add(update_pk)
    return averaged


def provenance_of_versions(versions: Sequence[ModelVersion]) -> list[Provenance]:
    """The provenance of each of `versions` (of one job or several), with a fixed number of queries: two
    for the lineage links, one for the updates, one per hospital for the flagged patients."""
    if not versions:
        return []
    jobs = {version.job_id for version in versions}
    through = ModelVersion.updates.through
    links = through.objects.filter(modelversion__job_id__in=jobs)
    first_round, averaged_by = _first_rounds(links), _averaged_by(links)
    updates = list(
        RoundUpdate.objects.filter(pk__in=list(first_round))
        .select_related("round", "hospital")
        .order_by("round__number", "hospital__name")
    )
    flagged = _flagged_by_update(updates)
    result = []
    for version in versions:
        mine = [u for u in updates if u.round.job_id == version.job_id and first_round[u.pk] <= version.round]
        patients: dict[str, set[str]] = defaultdict(set)
        for update in mine:
            patients[update.hospital.slug] |= flagged.get(update.pk, set())
        counts = {slug: len(patients[slug]) for slug in sorted({u.hospital.slug for u in mine})}
        own = [u for u in mine if u.pk in averaged_by[version.pk]]
        result.append(Provenance(version=version, updates=mine, averages=own, flagged=counts))
    return result


def provenance_of(version: ModelVersion) -> Provenance:
    return provenance_of_versions([version])[0]


# --------------------------------------------------------------------------- a patient's training use


@dataclass(frozen=True)
class InclusionProof:
    """My membership of one update's patient set: leaf, sibling path and the root it proves into."""

    update: RoundUpdate
    leaf: bytes
    proof: list[bytes]
    computed_root: bytes

    @property
    def matches_update_root(self) -> bool:
        """The root rebuilt from the update's patient rows equals the root the update carries (and signed)."""
        return "0x" + self.computed_root.hex() == self.update.patient_root.lower()


@dataclass(frozen=True)
class HospitalConsent:
    hospital: Hospital
    active: bool
    consent_ids: list[uuid.UUID]  # the TRAINING consents for the hospital in force now: revoke these


@dataclass(frozen=True)
class VersionUse:
    version: ModelVersion
    learned_from: list[InclusionProof]


@dataclass(frozen=True)
class TrainingUse:
    patient_address: str
    inclusions: list[InclusionProof] = field(default_factory=list)
    versions: list[VersionUse] = field(default_factory=list)
    consents: list[HospitalConsent] = field(default_factory=list)


def _inclusions(address: str) -> list[InclusionProof]:
    updates = list(
        RoundUpdate.objects.filter(patients__patient_address=address)
        .select_related("round__job", "hospital")
        .order_by("round__job__created_at", "round__job_id", "round__number", "hospital__name")
    )
    members: dict[int, list[str]] = defaultdict(list)
    rows = UpdatePatient.objects.filter(update_id__in=[u.pk for u in updates])
    for update_pk, patient in rows.values_list("update_id", "patient_address"):
        members[update_pk].append(patient)
    proofs = []
    for update in updates:
        tree = PatientTree.of(members[update.pk])
        proofs.append(InclusionProof(update, leaf_of(address), tree.proof(address), tree.root))
    return proofs


def _version_uses(inclusions: list[InclusionProof]) -> list[VersionUse]:
    """Each version of the jobs involved that descends from at least one of `inclusions`' updates."""
    by_pk = {inclusion.update.pk: inclusion for inclusion in inclusions}
    through = ModelVersion.updates.through
    first_round = _first_rounds(through.objects.filter(roundupdate_id__in=list(by_pk)))
    jobs = {inclusion.update.round.job_id for inclusion in inclusions}
    versions = ModelVersion.objects.filter(job_id__in=jobs).select_related("job").order_by("job_id", "round")
    uses = []
    for version in versions:
        learned_from = [
            by_pk[pk]
            for pk, first in first_round.items()
            if by_pk[pk].update.round.job_id == version.job_id and first <= version.round
        ]
        if learned_from:
            learned_from.sort(key=lambda i: (i.update.round.number, i.update.hospital.slug))
            uses.append(VersionUse(version, learned_from))
    uses.sort(key=lambda use: (use.version.job.created_at, use.version.job_id, use.version.round))
    return uses


def _hospital_consents(address: str, hospitals: Iterable[Hospital]) -> list[HospitalConsent]:
    consents = []
    for hospital in sorted(hospitals, key=lambda h: h.slug):
        in_force = consent_rule.covering_consents(
            grantee_address=hospital.account_address, purpose=Purpose.TRAINING
        ).filter(patient_address=address)
        consents.append(
            HospitalConsent(
                hospital=hospital,
                active=still_consenting(hospital, [address]).exists(),
                consent_ids=list(in_force.order_by("granted_block", "id").values_list("id", flat=True)),
            )
        )
    return consents


def training_use(patient: User) -> TrainingUse:
    """Every update that trained on `patient`'s records, with the proof of their inclusion, every model
    version descending from one, and the state of their TRAINING consent for each hospital involved."""
    if patient.role != Role.PATIENT or not patient.eth_address:
        raise Forbidden("Only a patient has a training use of their own records.", code="not_a_patient")
    address = patient.eth_address
    inclusions = _inclusions(address)
    hospitals = {inclusion.update.hospital_id: inclusion.update.hospital for inclusion in inclusions}
    return TrainingUse(
        patient_address=address,
        inclusions=inclusions,
        versions=_version_uses(inclusions),
        consents=_hospital_consents(address, hospitals.values()),
    )
