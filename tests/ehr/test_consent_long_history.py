"""A long consent history must not hide an older consent that still covers a record: the list, the
record door and the check API answer by the one consent rule (access/consent/rule.py), so they agree.

Regression: the check once read only the 16 newest rows, so 20 grant/revoke rounds of a record scope
buried the category consent behind them; the list showed the record while opening it said `revoked`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from tests.ehr.conftest import observation, revoke

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 20


def test_category_consent_still_covers_a_record_after_many_record_grants_and_revocations(
    personas: Any, grant: Any
) -> None:
    alice, bob = personas.alice, personas.bob
    created = personas.client_for(alice).post("/api/records", {"resource": observation()}, format="json")
    record_id = created.json()["id"]
    category = grant(alice, bob, "category:laboratory")
    for _ in range(ROUNDS):
        revoke(alice, grant(alice, bob, f"record:{record_id}"))
        cache.clear()  # the per-user password-confirmation throttle is not under test here

    doctor = personas.client_for(bob)
    assert [r["id"] for r in doctor.get("/api/records").json()["results"]] == [record_id]
    opened = doctor.get(f"/api/records/{record_id}")
    assert opened.status_code == 200, opened.json()
    assert opened.json()["access"]["legal_basis"] == f"consent:{category.id}@{category.granted_block}"
    checked = doctor.get(
        "/api/consents/check",
        {
            "patient": alice.eth_address,
            "grantee": bob.eth_address,
            "purpose": "TREATMENT",
            "record": record_id,
            "category": "laboratory",
        },
    ).json()
    assert (checked["allowed"], checked["reason"], checked["consent_id"]) == (
        True,
        "consent",
        str(category.id),
    )


def test_record_scope_revoked_many_times_is_denied_as_revoked(personas: Any, grant: Any) -> None:
    alice, bob = personas.alice, personas.bob
    created = personas.client_for(alice).post("/api/records", {"resource": observation()}, format="json")
    record_id = created.json()["id"]
    for _ in range(3):
        revoke(alice, grant(alice, bob, f"record:{record_id}"))

    doctor = personas.client_for(bob)
    assert doctor.get("/api/records").json()["results"] == []
    denied = doctor.get(f"/api/records/{record_id}")
    assert denied.status_code == 403 and denied.json()["error"] == "revoked"
