"""Journey 2 of the web portal, in Debian's chromium against the real server, chain, relayer and indexer:
a doctor requests access to a patient's whole chart; the patient approves a narrower scope (one record),
reading in plain words what her key signs; the doctor then sees only that record, and another record of
the same patient is refused in the page. On the chart, adding an observation is refused in words under the
one-record consent, and once she grants the whole chart for treatment the new record is added and listed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from access.consent import services as consent_services
from access.models import AccessRequest, Consent
from contracts.drain import drain_outbox
from ehr import records
from ehr.models import Record
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas, address_of
from tests.frontend.test_portal_journeys import ASTHMA, HEMOGLOBIN, heading, shoot, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _portal_settings(settings: SettingsWrapper) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-portal")
    expect.set_options(timeout=20_000)


def test_doctor_requests_the_chart_patient_approves_one_record_doctor_sees_only_that(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    p = personas
    hemoglobin = records.create_record(actor=p.alice, patient=p.alice, resource=HEMOGLOBIN)
    asthma = records.create_record(actor=p.alice, patient=p.alice, resource=ASTHMA)
    alice_address, bob_address = address_of(p.alice), address_of(p.bob)

    doctor = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    patient = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    try:
        # --- the doctor asks for the whole chart, for treatment, and says why
        dpage = doctor.new_page()
        dpage.goto("/")
        sign_in(dpage, "bob")
        heading(dpage, "My patients").to_be_visible()
        dpage.get_by_role("link", name="Request access").click()
        heading(dpage, "Request access").to_be_visible()
        dpage.get_by_role("button", name="Send the request").click()  # empty: refused in the page
        expect(dpage.get_by_label("Patient's Ethereum address")).to_have_attribute("aria-invalid", "true")
        expect(dpage.get_by_text("Say why you need access: the patient reads it.")).to_be_visible()
        dpage.get_by_label("Patient's Ethereum address").fill(alice_address)
        expect(dpage.get_by_label("The whole chart")).to_be_checked()
        dpage.get_by_label("Reason, for the patient").fill("Follow-up of your anaemia")
        dpage.get_by_role("button", name="Send the request").click()
        expect(dpage.get_by_role("status").filter(has_text="request was sent")).to_contain_text(
            "Your request was sent to patient 0x"
        )
        mine = dpage.get_by_role("table", name="Requests I made")
        expect(mine).to_contain_text("Waiting for the patient")
        shoot(dpage, "doctor-request-access")
        access_request = AccessRequest.objects.get(doctor=p.bob, patient=p.alice)
        assert access_request.scope == "chart" and access_request.status == "pending"

        # --- the patient reads the request and approves one record only
        page = patient.new_page()
        page.goto("/")
        sign_in(page, "alice")
        heading(page, "My records").to_be_visible()
        page.get_by_role("link", name="Access requests").click()
        heading(page, "Access requests").to_be_visible()
        asked = re.compile("^bob .* asks to see your whole chart to treat you")
        card = page.get_by_role("article", name=asked)
        expect(card).to_contain_text("Follow-up of your anaemia")
        shoot(page, "patient-requests")
        card.get_by_role("button", name="Approve bob's request…").click()
        form = page.get_by_role("form", name="Approve bob's request")
        expect(form.get_by_label("My whole chart")).to_be_checked()  # as asked, until she narrows it
        form.get_by_label("One record").check()
        form.get_by_label("Record", exact=True).select_option(value=str(hemoglobin.id))
        form.get_by_role("button", name="Review").click()
        signing = page.get_by_role("form", name="Sign the approval for bob")
        expect(signing.get_by_test_id("approval-sentence")).to_contain_text(
            "bob may see one record: Observation, laboratory results"
        )
        expect(signing.get_by_test_id("approval-sentence")).to_contain_text(
            "to treat you, until you revoke it."
        )
        expect(signing.get_by_text(f"record:{hemoglobin.id}")).to_be_visible()
        expect(signing.get_by_text(bob_address)).to_be_visible()
        shoot(page, "patient-approve-review")
        signing.get_by_label("Your password, to sign").fill(PASSWORD)
        signing.get_by_role("button", name="Sign and approve").click()
        expect(page.get_by_role("status").filter(has_text="approved")).to_have_text(
            "You approved bob's request. The grant is on its way to the chain."
        )
        answered = page.get_by_role("table", name="Requests you answered")
        expect(answered).to_contain_text("Approved: one record: Observation, laboratory results")
        expect(answered).to_contain_text("Pending")

        drain_outbox()  # what the relayer and indexer workers do
        consent = Consent.objects.get(patient_address=alice_address, grantee_address=bob_address)
        assert consent.status == "active" and consent.scope == f"record:{hemoglobin.id}"
        access_request.refresh_from_db()
        assert access_request.status == "approved" and access_request.consent_id == consent.id
        expect(answered).to_contain_text("Active")
        expect(answered).to_contain_text(f"Granted in block {consent.granted_block}")
        shoot(page, "patient-requests-answered")

        # --- the doctor sees the answer, then only that one record
        expect(mine).to_contain_text("Approved: one record")
        expect(mine).to_contain_text("Active")
        dpage.get_by_role("link", name="My patients").click()
        heading(dpage, "My patients").to_be_visible()
        row = dpage.get_by_role("row").filter(has=dpage.get_by_title(alice_address))
        expect(row).to_contain_text("one record")
        row.get_by_role("link").click()
        expect(dpage.get_by_role("status").filter(has_text="record")).to_have_text("1 record")
        dpage.get_by_role("link", name=re.compile(r"^Open Observation")).click()
        heading(dpage, "Hemoglobin").to_be_visible()
        expect(dpage.get_by_role("row", name=re.compile("Hemoglobin"))).to_contain_text("13.2")

        dpage.goto(f"/records/{asthma.id}")  # the chart's other record: refused, in words
        heading(dpage, "Record not available").to_be_visible()
        expect(dpage.get_by_test_id("refused")).to_contain_text(
            "Access refused. No consent of the patient covers this record for you."
        )
        expect(dpage.get_by_text("Asthma")).to_have_count(0)

        # --- on the chart, the doctor adds an observation: a one-record consent lets him add none
        dpage.goto(f"/patients/{alice_address}")
        count = dpage.get_by_role("status").filter(has_text=re.compile(r"^[0-9]+ records?$"))
        expect(count).to_have_text("1 record")
        add = dpage.get_by_role("form", name="Add a record")
        add.get_by_label("Measurement", exact=True).select_option(label="Glucose")
        expect(add.get_by_label("Unit", exact=True)).to_have_value("mg/dL")
        add.get_by_label("Value", exact=True).fill("95")
        add.get_by_role("button", name="Add to the chart").click()
        expect(dpage.get_by_test_id("add-refused")).to_contain_text(
            "Not added. No active treatment consent of this patient lets you add laboratory results."
        )
        assert Record.objects.filter(patient_address=alice_address).count() == 2

        # --- once the patient grants her whole chart for treatment, the record is added and listed
        consent_services.grant_with_managed_key(
            patient=p.alice,
            password=PASSWORD,
            grantee=bob_address,
            scope="chart",
            purpose="TREATMENT",
            expires_at=None,
        )
        drain_outbox()
        add.get_by_role("button", name="Add to the chart").click()
        expect(dpage.get_by_role("status").filter(has_text="Added to the chart")).to_contain_text(
            "Observation, laboratory results"
        )
        expect(count).to_have_text("3 records")
        added = Record.objects.get(patient_address=alice_address, created_by=p.bob)
        assert added.category == "laboratory" and added.resource_type == "Observation"
        chart = dpage.get_by_role("table", name=f"Records of patient {alice_address}")
        expect(chart.get_by_role("row").filter(has_text="bob")).to_have_count(1)
        shoot(dpage, "doctor-chart-added")
        dpage.get_by_role("link", name="Open it").click()
        heading(dpage, "Glucose").to_be_visible()
        expect(dpage.get_by_role("row", name=re.compile("Glucose"))).to_contain_text("mg/dL")
    finally:
        doctor.close()
        patient.close()
