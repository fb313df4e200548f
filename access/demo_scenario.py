"""The narrated consent scenario of `manage.py demo`: grant -> check -> revoke -> check, on the real chain."""
from __future__ import annotations

from collections.abc import Callable

from access import consent_selectors, consent_services
from access.demo_data import DemoWorld, drain_outbox
from access.models import Consent, Purpose
from contracts.models import ChainTx

Say = Callable[[str], None]


def _tx_line(tx_hash: str) -> str:
    chain_tx = ChainTx.objects.filter(tx_hash=tx_hash).first()
    gas = f", gas {chain_tx.gas_used:,}" if chain_tx and chain_tx.gas_used else ""
    return f"tx {tx_hash}{gas}"


def _check(say: Say, consent: Consent) -> bool:
    decision = consent_selectors.is_allowed(
        patient_address=consent.patient_address,
        grantee_address=consent.grantee_address,
        purpose=consent.purpose,
        category="laboratory",
    )
    verdict = "ALLOWED" if decision.allowed else "DENIED"
    say(f"   check: may the doctor read the patient's lab results? {verdict} ({decision.reason})")
    return decision.allowed


def run_consent_scenario(world: DemoWorld, say: Say) -> None:
    patient = world.patients[0]
    doctor = world.doctors[0]
    say(f"1. {patient.username} grants {doctor.user.username} ({doctor.hospital.name}) TREATMENT access to her whole chart")
    say("   (signed as EIP-712 typed data with her managed key; the relayer pays the gas)")
    consent = consent_services.grant_with_managed_key(
        patient=patient,
        password=world.password,
        grantee=doctor.user.eth_address,
        scope="chart",
        purpose=Purpose.TREATMENT.label,
        expires_at=None,
    )
    drain_outbox()
    consent.refresh_from_db()
    say(f"   mined in block {consent.granted_block}: {_tx_line(consent.grant_tx_hash)}")
    _check(say, consent)

    say(f"2. {patient.username} revokes it")
    consent = consent_services.revoke_with_managed_key(patient=patient, consent=consent, password=world.password)
    drain_outbox()
    consent.refresh_from_db()
    say(f"   mined in block {consent.ended_block}: {_tx_line(consent.revoke_tx_hash)}")
    _check(say, consent)

    as_of = consent_selectors.is_allowed(
        patient_address=consent.patient_address,
        grantee_address=consent.grantee_address,
        purpose=consent.purpose,
        at_block=consent.granted_block,
    )
    say(f"3. and as of block {consent.granted_block} (while it was active) the answer was: "
        f"{'ALLOWED' if as_of.allowed else 'DENIED'}")
