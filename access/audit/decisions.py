"""An access decision: whether an actor may use a patient's record, why, for which purpose, and the
legal basis the access log will name. Built by named constructors only, so the vocabulary (purposes,
reasons, legal bases) is spelled in one place; `access.audit.log.log_decision` writes it down."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from access.consent.rule import ConsentDecision, DenialReason
from access.models import AccessPurpose, LegalBasis


@dataclass(frozen=True)
class AccessDecision:
    """Why an actor may (or may not) use a patient's record; `legal_basis` is what the access log names."""

    allowed: bool
    reason: str  # owner | consent | break_glass | no_consent | expired | revoked | not_active_doctor
    purpose: AccessPurpose
    legal_basis: LegalBasis
    # False when the actor has no relationship with the patient at all: such callers get 404, not 403.
    knows_patient: bool = True

    @classmethod
    def owner(cls) -> AccessDecision:
        return cls(True, "owner", AccessPurpose.OWNER, LegalBasis.owner())

    @classmethod
    def by_consent(cls, checked: ConsentDecision, *, purpose: AccessPurpose) -> AccessDecision:
        """The consent rule's answer as a decision; a revocation not yet mined reads as `revoked`."""
        if checked.allowed:
            return cls(True, "consent", purpose, checked.legal_basis)
        pending = checked.reason == DenialReason.REVOCATION_PENDING
        return cls.denied(DenialReason.REVOKED if pending else checked.reason, purpose=purpose)

    @classmethod
    def by_break_glass(cls, break_glass_id: uuid.UUID | str) -> AccessDecision:
        return cls(True, "break_glass", AccessPurpose.EMERGENCY, LegalBasis.break_glass(break_glass_id))

    @classmethod
    def denied(cls, reason: str, *, purpose: AccessPurpose, knows_patient: bool = True) -> AccessDecision:
        return cls(False, reason, purpose, LegalBasis.none(), knows_patient)

    @classmethod
    def integrity_alert(cls) -> AccessDecision:
        """No one's access: the system found a record's bytes or anchor wrong, on the owner's behalf."""
        return cls(False, "tampered", AccessPurpose.OWNER, LegalBasis.none())

    def knowing(self, knows_patient: bool) -> AccessDecision:
        return AccessDecision(self.allowed, self.reason, self.purpose, self.legal_basis, knows_patient)
