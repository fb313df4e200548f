"""The access log's vocabulary as types: legal bases keep exactly the text stored (and hash-chained)
before they were typed, and an event built from a decision encodes to the same version-1 bytes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from access.audit.decisions import AccessDecision
from access.audit.log import AccessEvent, access_event, canonical_bytes
from access.consent.rule import ConsentDecision
from access.models import AccessAction, AccessOutcome, AccessPurpose, LegalBasis, LegalBasisKind

CONSENT_ID = uuid.UUID("4f1c2b3a-1111-4222-8333-444455556666")
PATIENT = "0x" + "11" * 20


def test_named_constructors_spell_the_stored_text() -> None:
    assert LegalBasis.owner() == "owner"
    assert LegalBasis.none() == "none"
    assert LegalBasis.consent(CONSENT_ID, 42) == f"consent:{CONSENT_ID}@42"
    assert LegalBasis.break_glass(CONSENT_ID) == f"break_glass:{CONSENT_ID}"


def test_stored_text_parses_back_to_its_parts() -> None:
    basis = LegalBasis.parse(f"consent:{CONSENT_ID}@42")
    assert (basis.kind, basis.ref, basis.block) == (LegalBasisKind.CONSENT, str(CONSENT_ID), 42)
    assert LegalBasis.parse("break_glass:abc").is_break_glass
    assert not LegalBasis.parse("owner").is_break_glass


@pytest.mark.parametrize("text", ["", "consent", "consent:abc", "break_glass:", "owner:1", "anyone"])
def test_malformed_text_is_not_a_legal_basis(text: str) -> None:
    with pytest.raises(ValueError):
        LegalBasis.parse(text)


def test_consent_decisions_name_their_consent_and_denials_name_none() -> None:
    allowed = AccessDecision.by_consent(
        ConsentDecision(True, "consent", CONSENT_ID, 42), purpose=AccessPurpose.TREATMENT
    )
    assert allowed.legal_basis == f"consent:{CONSENT_ID}@42" and allowed.purpose == "TREATMENT"
    pending = AccessDecision.by_consent(
        ConsentDecision(False, "revocation_pending"), purpose=AccessPurpose.TRAINING
    )
    assert (pending.allowed, pending.reason, pending.legal_basis) == (False, "revoked", "none")


def test_an_event_from_a_decision_encodes_to_the_version_1_bytes_of_plain_strings() -> None:
    typed = access_event(
        AccessDecision.by_break_glass(CONSENT_ID),
        patient_address=PATIENT,
        actor=None,
        actor_address="",
        action=AccessAction.BREAK_GLASS,
        record_id=CONSENT_ID,
    )
    # Plain strings where the fields are typed as the vocabulary: what version 1 callers passed.
    plain_fields: dict[str, Any] = {
        "patient_address": PATIENT,
        "actor": None,
        "actor_address": "",
        "action": "break_glass",
        "purpose": "EMERGENCY",
        "outcome": "allowed",
        "legal_basis": f"break_glass:{CONSENT_ID}",
        "record_id": str(CONSENT_ID),
    }
    plain = AccessEvent(**plain_fields)
    actor = {"id": None, "username": None, "role": None, "address": ""}
    encode = lambda event: canonical_bytes(  # noqa: E731
        patient=PATIENT, seq=1, at="2026-01-01T00:00:00.000000Z", actor=actor, event=event
    )
    assert encode(typed) == encode(plain)
    assert b'"legal_basis":"break_glass:' in encode(typed) and b'"outcome":"allowed"' in encode(typed)
    assert typed.outcome == AccessOutcome.ALLOWED
