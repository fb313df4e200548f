"""Journey 3 of the web portal, in Debian's chromium against the real server, chain, relayer and indexer: a
doctor breaks the glass on a patient's chart (a reason is required, and the page says the patient will see
it); the entry appears in the patient's access log, marked as break-glass; after the anchoring task ran,
the Verify button, which recomputes the hash chain and the Merkle proof in the browser and reads the root
from the Anchors contract over JSON-RPC itself, says the log is whole, and says what failed once an entry
is tampered with; the hospital admin's review queue shows the break-glass and takes a verdict.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from access.audit import breakglass
from access.audit.anchoring import anchor_audit_heads
from access.models import AccessAction, AccessLogEntry, AuditAnchorBatch, AuditBatchStatus, BreakGlass
from contracts.drain import drain_outbox
from healthhash.sealing import new_kek_entry
from tests.conftest import Personas, address_of
from tests.fixtures.audit_log import tampering_with_the_log
from tests.frontend.test_portal_journeys import heading, shoot, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REASON = "Unconscious on arrival in the ER, allergies unknown"


@pytest.fixture(autouse=True)
def _portal_settings(settings: SettingsWrapper) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-portal")
    expect.set_options(timeout=20_000)


def test_break_glass_shows_in_the_patients_verified_log_and_in_the_admins_review_queue(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    p = personas
    alice = address_of(p.alice)
    # Another hospital's emergency on another patient: one more leaf in the anchored batch, and a row the
    # General Hospital admin must not see.
    breakglass.start_break_glass(
        doctor=p.carol, patient_address=address_of(p.dave), reason="Car crash, no ID"
    )

    contexts = [
        chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
        for _ in range(3)
    ]
    doctor, patient, admin = contexts
    try:
        # --- the doctor breaks the glass: told first that the patient will see it; a reason is required
        dpage = doctor.new_page()
        dpage.goto("/")
        sign_in(dpage, "bob")
        heading(dpage, "My patients").to_be_visible()
        dpage.get_by_role("link", name="Break-glass").click()
        heading(dpage, "Break-glass").to_be_visible()
        expect(dpage.get_by_test_id("break-glass-warning")).to_contain_text(
            "The patient will see this access in their access log, with your name and your reason"
        )
        dpage.get_by_label("Patient's Ethereum address").fill(alice)
        dpage.get_by_role("button", name="Break the glass").click()
        expect(dpage.get_by_text("Say why this is an emergency (at least 10 characters).")).to_be_visible()
        expect(dpage.get_by_label("Reason for emergency access")).to_have_attribute("aria-invalid", "true")
        assert not BreakGlass.objects.filter(patient_address=alice).exists()  # refused in the page
        shoot(dpage, "doctor-break-glass")
        dpage.get_by_label("Reason for emergency access").fill(REASON)
        dpage.get_by_role("button", name="Break the glass").click()
        expect(dpage.get_by_role("status").filter(has_text="Emergency access is open until")).to_be_visible()
        glass = BreakGlass.objects.get(patient_address=alice)
        assert glass.doctor == p.bob and glass.reason == REASON

        # --- the anchoring task runs (as celery beat would), the relayer mines the root, the indexer sees it
        batch = anchor_audit_heads()
        assert batch is not None and batch.head_count == 2
        drain_outbox()
        assert AuditAnchorBatch.objects.get(pk=batch.pk).status == AuditBatchStatus.ANCHORED

        # --- the patient's access log: the break-glass, marked, with who and why
        page = patient.new_page()
        page.goto("/")
        sign_in(page, "alice")
        heading(page, "My records").to_be_visible()
        page.get_by_role("link", name="Access log").click()
        heading(page, "Access log").to_be_visible()
        row = page.locator("tr[data-break-glass='true']")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Break-glass")
        expect(row).to_contain_text("bob (doctor)")
        expect(row).to_contain_text(REASON)
        expect(row).to_contain_text("For an emergency")
        expect(page.get_by_role("region", name="Emergency (break-glass) accesses")).to_contain_text(REASON)
        csv = page.request.get("/api/patients/me/access-log?format=csv")
        assert csv.status == 200 and REASON in csv.text()
        expect(page.get_by_role("link", name=re.compile("^Download FHIR"))).to_have_attribute(
            "href", "/api/patients/me/access-log?format=fhir"
        )

        # --- Verify: the chain and the head's proof recomputed here, the root read from the chain here
        rpc_calls: list[str] = []
        page.on(
            "request", lambda request: rpc_calls.append(request.url) if request.method == "POST" else None
        )
        page.get_by_role("button", name="Verify").click()
        result = page.get_by_test_id("verify-result")
        expect(result.get_by_text("Your access log is whole.")).to_be_visible()
        glass_entry = AccessLogEntry.objects.get(patient_address=alice, action=AccessAction.BREAK_GLASS)
        expect(result).to_contain_text(
            f"Entry {glass_entry.seq} is anchored: its Merkle proof leads to the root {batch.root}"
        )
        expect(result).to_contain_text(f"in block {AuditAnchorBatch.objects.get(pk=batch.pk).anchored_block}")
        assert any(url.startswith(p.chain.w3.provider.endpoint_uri) for url in rpc_calls), rpc_calls  # type: ignore[attr-defined]
        shoot(page, "patient-access-log-verified")

        # --- an entry changed behind the patient's back: Verify says so, in words, naming it
        entry = glass_entry
        with tampering_with_the_log():
            AccessLogEntry.objects.filter(pk=entry.pk).update(
                canonical=bytes(entry.canonical).replace(b"allergies unknown", b"routine check-up")
            )
        page.get_by_role("button", name="Verify").click()
        expect(result.get_by_text("Your access log is NOT whole.")).to_be_visible()
        expect(result).to_contain_text(
            f"Entry {entry.seq} was changed after it was written (its hash does not match its content)."
        )
        shoot(page, "patient-access-log-broken")

        # --- the hospital admin's review queue: bob's break-glass (not City Clinic's), then a verdict
        apage = admin.new_page()
        apage.goto("/")
        sign_in(apage, "hadmin")
        apage.get_by_role("link", name="Break-glass reviews").click()
        heading(apage, "Break-glass reviews").to_be_visible()
        queued = apage.locator(f"tr[data-break-glass='{glass.id}']")
        expect(queued).to_contain_text("bob")
        expect(queued).to_contain_text(REASON)
        expect(apage.get_by_text("Car crash, no ID")).to_have_count(0)
        shoot(apage, "admin-break-glass-reviews")
        queued.get_by_role("button", name="Justified", exact=True).click()
        expect(apage.get_by_text("No break-glass access waits for review.")).to_be_visible()
        glass.refresh_from_db()
        assert glass.review_status == "justified" and glass.reviewed_by == p.hadmin
    finally:
        for context in contexts:
            context.close()
