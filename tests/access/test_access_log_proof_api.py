"""GET /api/patients/me/access-log/proof: what the patient's own verifier needs, checked here by a verifier
written from the documented rules alone (hashlib, not the project's hashing) against the root read from the
Anchors contract on the real chain; a tampered or rewritten log fails it, and only the patient reads hers."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from web3.contract import Contract

from access.audit.anchoring import anchor_audit_heads
from access.audit.log import AccessEvent, record_accesses
from access.models import (
    AccessAction,
    AccessLogEntry,
    AccessOutcome,
    AccessPurpose,
    AuditAnchorLeaf,
    LegalBasis,
    User,
)
from contracts.drain import drain_outbox
from tests.conftest import Personas, address_of
from tests.fixtures.audit_log import tampering_with_the_log

URL = "/api/patients/me/access-log/proof"


def _opens(patient: User, doctor: User, n: int) -> list[AccessEvent]:
    return [
        AccessEvent(
            patient_address=address_of(patient),
            actor=doctor,
            actor_address=address_of(doctor),
            action=AccessAction.OPEN,
            purpose=AccessPurpose.TREATMENT,
            outcome=AccessOutcome.ALLOWED,
            legal_basis=LegalBasis(f"consent:c{i}@{i + 1}"),
            record_id=f"rec-{i}",
        )
        for i in range(n)
    ]


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def problems_of(body: dict[str, Any], root_on_chain: bytes) -> list[str]:
    """An outside verifier: the chain from 32 zero bytes, then the anchored head's leaf up to the root."""
    found: list[str] = []
    prev, hashes = b"\x00" * 32, {}
    for expected_seq, entry in enumerate(body["entries"], start=1):
        seq, canonical = entry["seq"], base64.b64decode(entry["canonical_b64"])
        content = json.loads(canonical)
        if seq != expected_seq or content["seq"] != seq or content["patient"] != body["patient"]:
            found.append(f"entry {expected_seq}: out of place")
        if bytes.fromhex(entry["prev_hash"][2:]) != prev:
            found.append(f"entry {seq}: does not link")
        prev = _sha(prev, canonical)
        if "0x" + prev.hex() != entry["entry_hash"]:
            found.append(f"entry {seq}: hash mismatch")
        hashes[seq] = prev
    anchor = body["anchor"]
    if anchor is None:
        return [*found, "not anchored"]
    if hashes.get(anchor["seq"]) != bytes.fromhex(anchor["head_hash"][2:]):
        found.append(f"anchored head {anchor['seq']}: not the recomputed entry")
    node = _sha(
        b"\x00",
        bytes.fromhex(body["patient"][2:]),
        anchor["seq"].to_bytes(8, "big"),
        hashes.get(anchor["seq"], b""),
    )
    for step in anchor["proof"]:
        sibling = bytes.fromhex(step["hash"][2:])
        node = _sha(b"\x01", sibling, node) if step["side"] == "L" else _sha(b"\x01", node, sibling)
    if node != root_on_chain:
        found.append("root not on chain")
    return found


def root_on_chain(anchors: Contract, body: dict[str, Any]) -> bytes:
    root: bytes = anchors.functions.auditRootOf(bytes.fromhex(body["anchor"]["batch_id"][2:])).call()
    return root


@pytest.fixture
def anchored(personas: Personas, own_anchors: Contract) -> Personas:
    """alice: 5 entries anchored, then 1 more not yet; dave: 3 entries anchored in the same batch."""
    record_accesses(_opens(personas.alice, personas.bob, 5) + _opens(personas.dave, personas.carol, 3))
    assert anchor_audit_heads() is not None
    drain_outbox()
    record_accesses(_opens(personas.alice, personas.bob2, 1))
    return personas


def test_the_proof_verifies_against_the_root_read_from_the_chain(
    anchored: Personas, own_anchors: Contract
) -> None:
    p = anchored
    response = p.client_for(p.alice).get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"] == address_of(p.alice)
    assert [entry["seq"] for entry in body["entries"]] == [1, 2, 3, 4, 5, 6]
    anchor = body["anchor"]
    assert anchor["seq"] == 5 and anchor["head_count"] == 2 and len(anchor["proof"]) == 1
    assert problems_of(body, root_on_chain(own_anchors, body)) == []
    # The chain facts name the contract, chain, transaction and block that really anchored the batch.
    assert anchor["contract_address"] == own_anchors.address
    assert anchor["chain_id"] == p.chain.chain_id
    receipt = p.chain.w3.eth.get_transaction_receipt(anchor["tx_hash"])
    assert receipt["blockNumber"] == anchor["block_number"]
    assert any(log["address"] == own_anchors.address for log in receipt["logs"])
    assert body["rpc_url"] == p.chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]


def test_a_tampered_entry_fails_the_check(anchored: Personas, own_anchors: Contract) -> None:
    p = anchored
    entry = AccessLogEntry.objects.get(patient_address=address_of(p.alice), seq=2)
    with tampering_with_the_log():
        AccessLogEntry.objects.filter(pk=entry.pk).update(
            canonical=bytes(entry.canonical).replace(b"rec-1", b"rec-7")
        )
    body = p.client_for(p.alice).get(URL).json()
    found = problems_of(body, root_on_chain(own_anchors, body))
    assert "entry 2: hash mismatch" in found
    assert "root not on chain" in found


def test_a_rewritten_log_with_its_proof_recomputed_fails_against_the_chain(
    anchored: Personas, own_anchors: Contract
) -> None:
    """Rewrite entry 2, re-chain every hash after it and the anchored leaf: consistent for the database,
    not for the root the chain holds."""
    p = anchored
    alice = address_of(p.alice)
    rows = list(AccessLogEntry.objects.filter(patient_address=alice).order_by("seq"))
    prev = b"\x00" * 32
    with tampering_with_the_log():
        for row in rows:
            canonical = bytes(row.canonical)
            if row.seq == 2:
                canonical = canonical.replace(b"rec-1", b"rec-7")
            prev = _sha(prev, canonical)
            AccessLogEntry.objects.filter(pk=row.pk).update(canonical=canonical, entry_hash=prev)
            AuditAnchorLeaf.objects.filter(patient_address=alice, seq=row.seq).update(head_hash=prev)
    body = p.client_for(p.alice).get(URL).json()
    assert problems_of(body, root_on_chain(own_anchors, body)) == ["root not on chain"]


def test_before_the_first_anchor_there_is_no_head_proof(personas: Personas, own_anchors: Contract) -> None:
    record_accesses(_opens(personas.alice, personas.bob, 2))
    body = personas.client_for(personas.alice).get(URL).json()
    assert [entry["seq"] for entry in body["entries"]] == [1, 2]
    assert body["anchor"] is None


def test_each_patient_gets_only_her_own_log_and_others_are_refused(anchored: Personas) -> None:
    p = anchored
    dave = p.client_for(p.dave).get(URL).json()
    assert dave["patient"] == address_of(p.dave) and len(dave["entries"]) == 3
    assert all(
        address_of(p.alice).encode() not in base64.b64decode(e["canonical_b64"]) for e in dave["entries"]
    )
    for other in (p.bob, p.hadmin, p.cadmin):
        response = p.client_for(other).get(URL)
        assert response.status_code == 403, other.username
        assert response.json()["error"] == "forbidden"
    assert p.client_for(p.alice).get(URL).status_code == 200
    anonymous = p.client_for(p.alice)
    anonymous.force_authenticate(None)
    assert anonymous.get(URL).status_code in (401, 403)


def test_the_public_node_is_published_only_when_it_is_local_or_named(
    personas: Personas, settings: SettingsWrapper
) -> None:
    """The browser may connect to the node it is told of (CSP connect-src), and a remote ETH_RPC_URL, which
    may carry an API key, is never told unless the operator names a public one."""
    alice = personas.client_for(personas.alice)
    local = settings.ETH_RPC_URL  # the test anvil, on 127.0.0.1
    assert alice.get(URL).json()["rpc_url"] == local
    assert f"connect-src 'self' {local.rstrip('/')};" in Client().get("/")["Content-Security-Policy"]

    settings.ETH_RPC_URL = "https://mainnet.example.net/v3/secret-key"
    assert alice.get(URL).json()["rpc_url"] == ""
    assert "connect-src 'self';" in Client().get("/")["Content-Security-Policy"]

    settings.ETH_PUBLIC_RPC_URL = "https://rpc.consortium.example/"
    assert alice.get(URL).json()["rpc_url"] == "https://rpc.consortium.example/"
    policy = Client().get("/records")["Content-Security-Policy"]
    assert "connect-src 'self' https://rpc.consortium.example;" in policy
