"""The access log: entries are appended to the patient's own hash chain with everything an accounting
of disclosures needs, and patients read and export theirs (JSON, CSV, FHIR AuditEvent Bundle)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from access.audit.log import GENESIS_HASH, AccessEvent, BadAccessEvent, record_access, record_accesses
from access.identity.users import address_of
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditChainHead,
    LegalBasis,
    User,
)
from tests.conftest import Personas

RECORD = "4f1c2b3a-1111-4222-8333-444455556666"


def _open(
    personas: Personas,
    patient: User,
    *,
    outcome: AccessOutcome = AccessOutcome.ALLOWED,
    basis: str = "consent:abc@7",
) -> AccessEvent:
    allowed = outcome == AccessOutcome.ALLOWED
    return AccessEvent(
        patient_address=address_of(patient),
        actor=personas.bob,
        actor_address=address_of(personas.bob),
        action=AccessAction.OPEN if allowed else AccessAction.DENY,
        purpose=AccessPurpose.TREATMENT,
        outcome=outcome,
        legal_basis=LegalBasis(basis) if allowed else LegalBasis.none(),
        record_id=RECORD,
        reason="" if outcome == "allowed" else "no_consent",
    )


@pytest.fixture
def alice_log(personas: Personas) -> list[AccessLogEntry]:
    return [
        record_access(_open(personas, personas.alice)),
        record_access(_open(personas, personas.alice, outcome=AccessOutcome.DENIED)),
        record_access(_open(personas, personas.alice)),
    ]


def test_each_entry_commits_to_the_previous_one(personas: Personas, alice_log: list[AccessLogEntry]) -> None:
    prev = GENESIS_HASH
    for expected_seq, entry in enumerate(alice_log, start=1):
        entry.refresh_from_db()
        assert entry.seq == expected_seq
        assert bytes(entry.entry_hash) == hashlib.sha256(prev + bytes(entry.canonical)).digest()
        prev = bytes(entry.entry_hash)
    head = AuditChainHead.objects.get(patient_address=personas.alice.eth_address)
    assert (head.seq, bytes(head.head_hash)) == (3, prev)


def test_canonical_bytes_carry_who_what_when_why(personas: Personas, alice_log: list[AccessLogEntry]) -> None:
    content = json.loads(bytes(alice_log[1].canonical))
    assert content["patient"] == personas.alice.eth_address
    assert content["seq"] == 2
    assert content["actor"]["address"] == personas.bob.eth_address
    assert content["actor"]["role"] == "doctor"
    assert (content["action"], content["outcome"], content["legal_basis"]) == ("deny", "denied", "none")
    assert (content["record"], content["purpose"], content["reason"]) == (RECORD, "TREATMENT", "no_consent")
    assert content["at"].endswith("Z")


def test_patients_have_separate_chains(personas: Personas, alice_log: list[AccessLogEntry]) -> None:
    entries = record_accesses(
        [_open(personas, personas.dave), _open(personas, personas.alice), _open(personas, personas.dave)]
    )
    assert [(e.patient_address, e.seq) for e in entries] == [
        (personas.dave.eth_address, 1),
        (personas.alice.eth_address, 4),
        (personas.dave.eth_address, 2),
    ]


def test_unknown_action_is_refused_and_nothing_is_written(personas: Personas) -> None:
    bad = AccessEvent(
        patient_address=address_of(personas.alice),
        actor=None,
        actor_address="",
        action="peek",  # type: ignore[arg-type]  # deliberately not an AccessAction
        purpose=AccessPurpose.TREATMENT,
        outcome=AccessOutcome.ALLOWED,
        legal_basis=LegalBasis.none(),
    )
    with pytest.raises(BadAccessEvent):
        record_accesses([_open(personas, personas.alice), bad])
    assert not AccessLogEntry.objects.exists()


def test_patient_reads_own_access_log_newest_first(
    personas: Personas, alice_log: list[AccessLogEntry]
) -> None:
    record_access(_open(personas, personas.dave))
    response = personas.client_for(personas.alice).get("/api/patients/me/access-log")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    assert [row["seq"] for row in body["results"]] == [3, 2, 1]
    first = body["results"][2]
    assert first["actor"]["address"] == personas.bob.eth_address
    assert first["legal_basis"] == "consent:abc@7"
    assert first["anchored"] is False
    assert first["entry_hash"] == "0x" + bytes(alice_log[0].entry_hash).hex()


def test_access_log_is_for_patients_only(personas: Personas, alice_log: list[AccessLogEntry]) -> None:
    response = personas.client_for(personas.bob).get("/api/patients/me/access-log")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_export_errors_keep_the_error_shape(personas: Personas, alice_log: list[AccessLogEntry]) -> None:
    response = personas.client_for(personas.bob).get("/api/patients/me/access-log?format=csv")
    assert response.status_code == 403
    assert json.loads(response.content)["error"] == "forbidden"


def test_an_unknown_export_format_is_a_400_naming_the_parameter(
    personas: Personas, alice_log: list[AccessLogEntry]
) -> None:
    """DRF would answer 404 "Not found.", as if the log were missing; the parameter is what is wrong."""
    response = personas.client_for(personas.alice).get("/api/patients/me/access-log?format=xml")
    assert response.status_code == 400
    body = json.loads(response.content)
    assert (body["error"], body["field"]) == ("bad_format", "format")
    assert "csv" in body["detail"] and "fhir" in body["detail"]


@pytest.mark.parametrize("export", ["csv", "fhir"])
def test_a_download_takes_the_whole_log_but_refuses_bad_paging_parameters(
    personas: Personas, alice_log: list[AccessLogEntry], export: str
) -> None:
    """Found by the schema fuzzer: a download ignored `limit`, so `limit=-6` was a 200 there only."""
    client = personas.client_for(personas.alice)
    response = client.get(f"/api/patients/me/access-log?format={export}&limit=-6")
    assert response.status_code == 400
    body = json.loads(response.content)
    assert (body["error"], body["field"]) == ("invalid", "limit")
    whole = client.get(f"/api/patients/me/access-log?format={export}&limit=1&offset=1")
    assert whole.status_code == 200
    assert whole.content == client.get(f"/api/patients/me/access-log?format={export}").content


def test_csv_export_is_an_accounting_of_disclosures(
    personas: Personas, alice_log: list[AccessLogEntry]
) -> None:
    response = personas.client_for(personas.alice).get("/api/patients/me/access-log?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["seq"] for row in rows] == ["1", "2", "3"]
    assert (
        rows[1]["action"] == "deny" and rows[1]["outcome"] == "denied" and rows[1]["reason"] == "no_consent"
    )
    assert rows[0]["actor_address"] == personas.bob.eth_address
    assert rows[0]["record_id"] == RECORD


def test_fhir_export_is_a_valid_bundle_of_audit_events(
    personas: Personas, alice_log: list[AccessLogEntry]
) -> None:
    response = personas.client_for(personas.alice).get("/api/patients/me/access-log?format=fhir")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    events = [entry.resource for entry in bundle.entry or []]
    assert [getattr(event, "__resource_type__", None) for event in events] == ["AuditEvent"] * 3
    denied = events[1]
    assert isinstance(denied, AuditEvent)
    assert denied.outcome == "4"
    who = denied.agent[0].who
    assert who is not None and who.identifier is not None
    assert who.identifier.value == personas.bob.eth_address
