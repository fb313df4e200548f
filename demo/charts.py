"""Demo charts from the Breast Cancer Wisconsin (Diagnostic) table that ships with scikit-learn (no download):
one table row per patient, written as 30 FHIR Observations (one per feature, local codes under
urn:healthhash:wdbc) and a Condition (malignant or benign), spread over the demo hospitals with skewed
label mixes so that federated training has something to even out."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from access.models import Hospital, User
from demo.people import address_of
from ehr import fhir, records
from ehr.models import Record
from federated.testset import training_row_indices

WDBC_SYSTEM = "urn:healthhash:wdbc"
HOSPITAL_SYSTEM = "urn:healthhash:hospital"
# Share of malignant rows each hospital gets, by position (the first demo hospital sees the most cancer).
MALIGNANT_SHARE = (0.7, 0.4, 0.15)
_UNITS = {
    "radius": "px",
    "perimeter": "px",
    "area": "px2",
    "texture": "1",
}  # the rest are dimensionless ratios


@dataclass
class DemoChartsReport:
    hospital_of: dict[str, str] = field(default_factory=dict)  # username -> hospital slug
    label_of: dict[str, str] = field(default_factory=dict)  # username -> malignant | benign
    records: int = 0
    skipped: list[str] = field(default_factory=list)  # usernames that already had records


def feature_code(name: str) -> str:
    """`mean radius` -> `mean-radius`: the Observation.code under WDBC_SYSTEM."""
    return name.replace(" ", "-")


def _table() -> tuple[Any, Any, list[str]]:
    from sklearn.datasets import load_breast_cancer  # bundled with scikit-learn: nothing is downloaded

    table = load_breast_cancer()
    return table.data, table.target, [str(name) for name in table.feature_names]


def _unit(name: str) -> dict[str, str]:
    base = next((unit for key, unit in _UNITS.items() if key in name), "1")
    return {
        "unit": base,
        "system": "http://unitsofmeasure.org",
        "code": {"px": "[px]", "px2": "[px]2"}.get(base, base),
    }


def chart_bundle_for_row(
    values: Sequence[float],
    label: str,
    names: Sequence[str],
    hospital: Hospital | None,
    *,
    patient_address: str,
) -> dict[str, Any]:
    """A collection Bundle: 30 laboratory Observations and one Condition for one table row."""
    subject = fhir.reference_to(patient_address)
    performer = (
        [{"identifier": {"system": HOSPITAL_SYSTEM, "value": hospital.slug}, "display": hospital.name}]
        if hospital is not None
        else None
    )
    category = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
            ]
        }
    ]
    entries: list[dict[str, Any]] = []
    for name, value in zip(names, values, strict=True):
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": category,
            "subject": subject,
            "code": {
                "coding": [{"system": WDBC_SYSTEM, "code": feature_code(name), "display": name}],
                "text": name,
            },
            "valueQuantity": {"value": round(float(value), 6), **_unit(name)},
            "method": {"text": "fine needle aspirate, digitised image"},
        }
        if performer:
            observation["performer"] = performer
        entries.append({"resource": observation})
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {
            "coding": [{"system": WDBC_SYSTEM, "code": label, "display": f"breast mass, {label}"}],
            "text": f"Breast mass, {label}",
        },
        "subject": subject,
    }
    entries.append({"resource": condition})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _rows_by_hospital(target: Any, n_hospitals: int, wanted: list[int], seed: int) -> list[list[int]]:
    """For hospital h, `wanted[h]` row indexes whose malignant share is about MALIGNANT_SHARE[h]."""
    rng = random.Random(seed)
    # Never a row of the coordinator's held-out test set: a model is graded on rows no patient holds.
    rows = training_row_indices()
    malignant = [i for i in rows if int(target[i]) == 0]  # sklearn: 0 = malignant, 1 = benign
    benign = [i for i in rows if int(target[i]) == 1]
    rng.shuffle(malignant)
    rng.shuffle(benign)
    picked: list[list[int]] = []
    for h in range(n_hospitals):
        share = MALIGNANT_SHARE[h % len(MALIGNANT_SHARE)]
        n_malignant = round(wanted[h] * share)
        rows = [malignant.pop() for _ in range(min(n_malignant, len(malignant)))]
        rows += [benign.pop() for _ in range(min(wanted[h] - len(rows), len(benign)))]
        rng.shuffle(rows)
        picked.append(rows)
    return picked


def import_demo_charts(
    *,
    patients: list[User],
    rows_per_patient: int = 1,
    hospitals: list[Hospital] | None = None,
    seed: int = 569,
    say: Callable[[str], None] = lambda _: None,
    on_patient: Callable[[int], None] = lambda _: None,
) -> DemoChartsReport:
    """Write table rows into the patients' charts (patient i at hospital i mod n), as the patient.

    Idempotent: a patient who already has records is skipped. Returns who is at which hospital and
    with which label, so the demo can grant TRAINING consents to the right hospital. `on_patient(n)` is
    told after each patient how many are done (for a progress bar).
    """
    hospitals = list(
        hospitals if hospitals is not None else Hospital.objects.order_by("created_at", "slug")[:3]
    )
    data, target, names = _table()
    n = max(len(hospitals), 1)
    per_hospital = [0] * n
    for index in range(len(patients)):
        per_hospital[index % n] += rows_per_patient
    pools = _rows_by_hospital(target, n, per_hospital, seed)
    report = DemoChartsReport()
    have_records = set(
        Record.objects.filter(patient__in=patients).values_list("patient_id", flat=True).distinct()
    )
    for index, patient in enumerate(patients):
        hospital = hospitals[index % n] if hospitals else None
        rows = [pools[index % n].pop() for _ in range(rows_per_patient) if pools[index % n]]
        if patient.pk in have_records:
            report.skipped.append(patient.username)
            continue
        for row in rows:
            label = "malignant" if int(target[row]) == 0 else "benign"
            bundle = chart_bundle_for_row(
                data[row], label, names, hospital, patient_address=address_of(patient)
            )
            report.records += len(
                records.import_bundle(actor=patient, patient=patient, bundle=bundle).records
            )
            report.label_of[patient.username] = label
        if hospital is not None:
            report.hospital_of[patient.username] = hospital.slug
        where = hospital.slug if hospital else "-"
        say(f"  {patient.username}: {len(rows)} row(s) at {where} ({report.label_of.get(patient.username)})")
        on_patient(index + 1)
    say(f"demo charts: {report.records} records for {len(patients) - len(report.skipped)} patients")
    return report
