"""A node that is not the deployments' chain refuses every chain write
(tests/contracts/test_chain_identity.py) but one: the patient's revocation. Refused, it would leave a
doctor reading on an index nobody can change; queued like a write made while the node is down, it denies
at once and ends the consent on chain once the right node answers again."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import Consent, ConsentStatus
from contracts import client, relayer
from contracts.drain import drain_outbox
from contracts.models import Deployment, OutboxItem
from tests.conftest import PASSWORD, Personas

pytestmark = pytest.mark.django_db


def test_a_revocation_on_another_chain_is_queued_and_denies_at_once(personas: Personas) -> None:
    p = personas
    api: APIClient = p.client_for(p.alice)
    body = {"grantee": p.bob.eth_address, "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD}
    consent_id = api.post("/api/consents", body, format="json").json()["id"]
    drain_outbox()
    check = {"patient": p.alice.eth_address or "", "grantee": p.bob.eth_address or "", "purpose": "TREATMENT"}
    assert api.get("/api/consents/check", check).json()["allowed"] is True
    recorded = dict(Deployment.objects.values_list("name", "genesis_hash"))
    Deployment.objects.update(genesis_hash="0x" + "ee" * 32)  # this node is no longer the deployments' chain
    client.reset_caches()

    revoked = api.post(f"/api/consents/{consent_id}/revoke", {"password": PASSWORD}, format="json")
    assert revoked.status_code == 202, revoked.json()
    answer = api.get("/api/consents/check", check).json()
    assert (answer["allowed"], answer["reason"]) == (False, "revocation_pending")
    grant_again = api.post("/api/consents", {**body, "grantee": p.bob2.eth_address}, format="json")
    assert (grant_again.status_code, grant_again.json()["error"]) == (503, "wrong_chain")  # others refused
    report = relayer.relay_once()
    assert "not the chain" in report.wrong_chain and report.txs_sent == 0
    assert OutboxItem.objects.get(kind="consent.revoke").status == OutboxItem.Status.PENDING

    for name, genesis in recorded.items():  # the right node answers again
        Deployment.objects.filter(name=name).update(genesis_hash=genesis)
    client.reset_caches()
    drain_outbox()
    consent = Consent.objects.get(pk=consent_id)
    assert consent.status == ConsentStatus.REVOKED and consent.ended_block is not None
    assert api.get("/api/consents/check", check).json()["reason"] == "revoked"
