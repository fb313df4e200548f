"""Break-glass: an active doctor opens a patient's records without consent for a limited time, with a
written reason; it is always logged (and anchored), shown to the patient, and reviewed by the admin of
the doctor's hospital only."""

from __future__ import annotations

import datetime as dt

import pytest

from access.audit.anchoring import anchor_audit_heads
from access.audit.breakglass import live_break_glass
from access.audit.verify import verify_audit
from access.models import AccessLogEntry, BreakGlass, Doctor
from contracts.drain import drain_outbox
from tests.conftest import Personas, address_of

REASON = "Unconscious in the ER, allergy history needed"


def _break(personas: Personas, doctor=None, patient=None, reason: str = REASON):
    api = personas.client_for(doctor or personas.bob)
    return api.post(
        "/api/break-glass", {"patient": (patient or personas.alice).eth_address, "reason": reason}
    )


def test_doctor_breaks_the_glass_for_the_configured_hours(personas: Personas, settings) -> None:
    settings.BREAK_GLASS_HOURS = 4
    response = _break(personas)
    assert response.status_code == 201, response.content
    body = response.json()
    glass = BreakGlass.objects.get(pk=body["id"])
    assert (glass.doctor, glass.hospital, glass.patient) == (personas.bob, personas.general, personas.alice)
    assert glass.expires_at - glass.started_at == dt.timedelta(hours=4)
    assert body["review_status"] == "pending" and body["live"] is True
    assert live_break_glass(doctor=personas.bob, patient_address=address_of(personas.alice)) == glass
    assert live_break_glass(doctor=personas.bob2, patient_address=address_of(personas.alice)) is None
    assert live_break_glass(doctor=personas.bob, patient_address=address_of(personas.dave)) is None


def test_break_glass_is_always_in_the_patients_access_log(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    entry = AccessLogEntry.objects.get(patient_address=address_of(personas.alice))
    assert (entry.action, entry.purpose, entry.outcome) == ("break_glass", "EMERGENCY", "allowed")
    assert entry.legal_basis == f"break_glass:{glass_id}" and entry.reason == REASON
    log = personas.client_for(personas.alice).get("/api/patients/me/access-log").json()["results"]
    assert [row["action"] for row in log] == ["break_glass"]
    mine = personas.client_for(personas.alice).get("/api/patients/me/break-glass").json()["results"]
    assert [row["id"] for row in mine] == [glass_id] and mine[0]["reason"] == REASON
    assert personas.client_for(personas.dave).get("/api/patients/me/break-glass").json()["results"] == []


def test_break_glass_entry_is_anchored_on_chain(personas: Personas, own_anchors: object) -> None:
    # own_anchors: verify_audit reads every root of the deployed Anchors; other tests' must not be there.
    _break(personas)
    assert anchor_audit_heads() is not None
    drain_outbox()
    log = personas.client_for(personas.alice).get("/api/patients/me/access-log").json()["results"]
    assert log[0]["anchored"] is True
    report = verify_audit()
    assert report.ok and report.heads_anchored == 1


@pytest.mark.parametrize("reason", ["", "   ", "help now"])
def test_a_written_reason_of_ten_characters_is_required(personas: Personas, reason: str) -> None:
    response = _break(personas, reason=reason)
    assert response.status_code == 400
    assert response.json()["field"] == "reason"
    assert not BreakGlass.objects.exists() and not AccessLogEntry.objects.exists()


def test_inactive_doctor_is_forbidden(personas: Personas) -> None:
    Doctor.objects.filter(user=personas.bob).update(active=False)
    response = _break(personas)
    assert response.status_code == 403
    assert response.json()["error"] == "not_active_doctor"


@pytest.mark.parametrize("who", ["alice", "hadmin", "cadmin"])
def test_only_doctors_break_the_glass(personas: Personas, who: str) -> None:
    assert _break(personas, doctor=getattr(personas, who)).status_code == 403


def test_unknown_patient_is_404(personas: Personas) -> None:
    response = _break(personas, patient=personas.carol)  # a doctor, not a patient
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_patient"


def test_break_glass_expires(personas: Personas, settings) -> None:
    settings.BREAK_GLASS_HOURS = 0
    _break(personas)
    assert live_break_glass(doctor=personas.bob, patient_address=address_of(personas.alice)) is None


def test_deactivated_doctor_loses_live_break_glass(personas: Personas) -> None:
    _break(personas)
    Doctor.objects.filter(user=personas.bob).update(active=False)
    assert live_break_glass(doctor=personas.bob, patient_address=address_of(personas.alice)) is None


def test_review_queue_shows_own_hospitals_break_glasses_only(personas: Personas) -> None:
    bob_glass = _break(personas).json()["id"]
    carol_glass = _break(personas, doctor=personas.carol).json()["id"]
    general = personas.client_for(personas.hadmin).get("/api/break-glass/reviews").json()["results"]
    clinic = (
        personas.client_for(personas.other_hadmin)
        .get("/api/break-glass/reviews?status=pending")
        .json()["results"]
    )
    assert [row["id"] for row in general] == [bob_glass]
    assert [row["id"] for row in clinic] == [carol_glass]
    assert personas.client_for(personas.bob).get("/api/break-glass/reviews").status_code == 403


def test_admin_marks_justified_once(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    api = personas.client_for(personas.hadmin)
    response = api.post(
        f"/api/break-glass/{glass_id}/review", {"verdict": "justified", "note": "cardiac arrest"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["review_status"] == "justified" and response.json()["reviewed_by"] == "hadmin"
    assert response.json()["live"] is True
    again = api.post(f"/api/break-glass/{glass_id}/review", {"verdict": "unjustified"})
    assert again.status_code == 409
    seen = personas.client_for(personas.alice).get("/api/patients/me/break-glass").json()["results"][0]
    assert (seen["review_status"], seen["review_note"]) == ("justified", "cardiac arrest")


def test_unjustified_verdict_ends_a_live_break_glass(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    response = personas.client_for(personas.hadmin).post(
        f"/api/break-glass/{glass_id}/review", {"verdict": "unjustified"}
    )
    assert response.status_code == 200
    assert response.json()["live"] is False
    assert live_break_glass(doctor=personas.bob, patient_address=address_of(personas.alice)) is None


def test_other_hospitals_admin_gets_404(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    response = personas.client_for(personas.other_hadmin).post(
        f"/api/break-glass/{glass_id}/review", {"verdict": "unjustified"}
    )
    assert response.status_code == 404
    assert BreakGlass.objects.get(pk=glass_id).review_status == "pending"


def test_bad_verdict_is_400(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    response = personas.client_for(personas.hadmin).post(
        f"/api/break-glass/{glass_id}/review", {"verdict": "maybe"}
    )
    assert response.status_code == 400 and response.json()["field"] == "verdict"


def test_doctor_lists_own_break_glasses(personas: Personas) -> None:
    glass_id = _break(personas).json()["id"]
    _break(personas, doctor=personas.carol)
    mine = personas.client_for(personas.bob).get("/api/break-glass").json()["results"]
    assert [row["id"] for row in mine] == [glass_id]
    assert (
        mine[0]["hospital"] == "general-hospital" and mine[0]["doctor"]["address"] == personas.bob.eth_address
    )
