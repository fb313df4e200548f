"""Shared set-up for the dataset-release tests: demo charts (Breast Cancer Wisconsin rows written as FHIR,
as demo/charts.py writes them) for a few patients, TRAINING consents for General Hospital's account,
signed with the patients' managed keys and driven through the real relayer and indexer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from access.consent import services as consent_services
from access.models import Consent, Role, User
from contracts import client
from contracts.drain import drain_outbox
from demo.charts import chart_bundle_for_row
from ehr import records
from ehr.models import Record
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas, _user_with_key

# Table rows of the four patients: two malignant (0, 1) and two benign (19, 20) in scikit-learn's table.
ROWS = {"p0": 0, "p1": 19, "p2": 1, "p3": 20}


@dataclass
class WdbcWorld:
    personas: Personas
    patients: dict[str, User]
    consents: dict[str, Consent]
    hospital_key: bytes
    data: Any  # the scikit-learn table: data[row] are the 30 features, target[row] 0 = malignant
    target: Any

    @property
    def hospital(self) -> Any:
        return self.personas.general

    def address(self, name: str) -> str:
        address = self.patients[name].eth_address
        assert address is not None
        return address

    def record_ids(self, *names: str, category: str | None = None) -> set[str]:
        rows = Record.objects.filter(patient_address__in=[self.address(n) for n in names])
        if category is not None:
            rows = rows.filter(category=category)
        return {str(pk) for pk in rows.values_list("pk", flat=True)}

    def grant_training(self, name: str, scope: str = "chart") -> Consent:
        consent = consent_services.grant_with_managed_key(
            patient=self.patients[name],
            password=PASSWORD,
            grantee=self.hospital.account_address,
            scope=scope,
            purpose="TRAINING",
            expires_at=None,
        )
        drain_outbox()
        consent.refresh_from_db()
        assert consent.status == "active", consent.failure_reason
        return consent

    def revoke(self, name: str) -> None:
        consent_services.revoke_with_managed_key(
            patient=self.patients[name], consent=self.consents[name], password=PASSWORD
        )
        drain_outbox()

    @staticmethod
    def head() -> int:
        return client.latest_block()


@pytest.fixture(autouse=True)
def _test_kek(settings: Any) -> None:
    """A KEK ring of this test's own (autouse: set before the personas' keys are sealed)."""
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-federated-test")


@pytest.fixture(name="world")
def world_fixture(personas: Personas) -> WdbcWorld:
    """p0, p1: TRAINING for the whole chart; p2: TRAINING for laboratory only (no label record);
    p3: TREATMENT only (not a training consent). All four have a 31-record chart."""
    table = load_breast_cancer()
    names = [str(n) for n in table.feature_names]
    patients = {}
    for name, row in ROWS.items():
        patient = _user_with_key(name, Role.PATIENT)
        label = "malignant" if int(table.target[row]) == 0 else "benign"
        bundle = chart_bundle_for_row(
            table.data[row], label, names, personas.general, patient_address=str(patient.eth_address)
        )
        records.import_bundle(actor=patient, patient=patient, bundle=bundle)
        patients[name] = patient
    world = WdbcWorld(
        personas=personas,
        patients=patients,
        consents={},
        hospital_key=bytes(personas.chain.accounts.hospital_account.key),
        data=np.asarray(table.data),
        target=np.asarray(table.target),
    )
    world.consents["p0"] = world.grant_training("p0")
    world.consents["p1"] = world.grant_training("p1")
    world.consents["p2"] = world.grant_training("p2", scope="category:laboratory")
    world.consents["p3"] = consent_services.grant_with_managed_key(
        patient=patients["p3"],
        password=PASSWORD,
        grantee=world.hospital.account_address,
        scope="chart",
        purpose="TREATMENT",
        expires_at=None,
    )
    drain_outbox()
    return world
