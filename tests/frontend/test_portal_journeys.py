"""End-to-end journeys of the web portal in Debian's chromium, against the real Django server (pytest-django's
live server), the real anvil chain and the real relayer and indexer, asserting what the user sees.

Journey 1: a patient signs in, adds a record by pasting its FHIR JSON (a FHIR mistake is named next to
it), grants a doctor access to one record; the doctor opens it; the patient
revokes; the doctor is refused on reload. On the way: the grant's and the revocation's progress while the
chain works (the test relays and indexes the outbox at the point a worker would), a lost connection with
its retry, and an expired session that returns to sign-in and back. Each screen is photographed at 360 px
and 1280 px into var/screenshots/, and at 360 px no screen scrolls sideways.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from access.models import Consent
from contracts.drain import drain_outbox
from ehr import records
from ehr.models import Record
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas, address_of
from tests.frontend.conftest import SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WIDTHS = (360, 1280)
HEMOGLOBIN = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
    "effectiveDateTime": "2026-11-02T09:30:00Z",
    "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
}
ASTHMA = {
    "resourceType": "Condition",
    "subject": {"reference": "Patient/p1"},
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "code": {"text": "Asthma"},
}


@pytest.fixture(autouse=True)
def _portal_settings(settings: SettingsWrapper) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-portal")
    expect.set_options(timeout=20_000)


def shoot(page: Page, name: str) -> None:
    """Photograph the screen at each width; at a phone's width nothing may stick out sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(50)  # one layout pass at the new width
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        if width == 360:
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 360 px"
    page.set_viewport_size({"width": 1280, "height": 800})


def sign_in(page: Page, username: str) -> None:
    """By keyboard, as a person would: type the name, Tab to the password, Enter."""
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def heading(page: Page, name: str | re.Pattern[str]) -> Any:
    return expect(page.get_by_role("heading", level=1, name=name))


def test_patient_grants_one_record_doctor_opens_it_patient_revokes_doctor_is_refused(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    p = personas
    hemoglobin = records.create_record(actor=p.alice, patient=p.alice, resource=HEMOGLOBIN)
    records.create_record(actor=p.alice, patient=p.alice, resource=ASTHMA)
    alice_address, bob_address = address_of(p.alice), address_of(p.bob)

    patient = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    doctor = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    try:
        page = patient.new_page()
        # --- the patient signs in and finds her records
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/sign-in$"))
        shoot(page, "sign-in")
        sign_in(page, "alice")
        heading(page, "My records").to_be_visible()
        expect(page.get_by_role("status").filter(has_text="records")).to_have_text("2 records")
        shoot(page, "patient-records")

        # --- adds a record of her own by pasting its FHIR JSON; a FHIR mistake is named next to the JSON
        page.get_by_role("link", name="Add a record").click()
        heading(page, "Add a record").to_be_visible()
        hay_fever = {**ASTHMA, "code": {"text": "Hay fever"}}
        page.get_by_label("FHIR JSON").fill(json.dumps({**hay_fever, "clinicalStatus": "active"}))
        page.get_by_role("button", name="Add to my chart").click()
        expect(page.get_by_label("FHIR JSON")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_text(re.compile(r"Condition\.clinicalStatus"))).to_be_visible()
        shoot(page, "add-record-error")
        page.get_by_label("FHIR JSON").fill(json.dumps(hay_fever))
        page.get_by_role("button", name="Add to my chart").click()
        heading(page, "Record added").to_be_visible()
        added = Record.objects.filter(resource_type="Condition", created_by=p.alice).latest("created_at")
        expect(page.get_by_text(str(added.id))).to_be_visible()
        shoot(page, "add-record-done")
        page.get_by_role("link", name="Back to my records").click()
        heading(page, "My records").to_be_visible()
        expect(page.get_by_role("status").filter(has_text="records")).to_have_text("3 records")

        page.get_by_role("link", name=re.compile(r"^Open Observation")).click()
        heading(page, "Hemoglobin").to_be_visible()
        expect(page.get_by_role("row", name=re.compile("Hemoglobin"))).to_contain_text("13.2")
        expect(page.get_by_role("row", name=re.compile("Hemoglobin"))).to_contain_text("g/dL")
        shoot(page, "patient-record")

        # --- grants bob access to this one record, for treatment
        page.get_by_role("link", name="Share this record").click()
        heading(page, "Grant access").to_be_visible()
        expect(page.get_by_label("One record")).to_be_checked()
        page.get_by_label("Who gets access", exact=True).select_option(value=bob_address)
        shoot(page, "grant-form")
        page.get_by_role("button", name="Review").click()
        heading(page, "Check and sign").to_be_visible()
        sentence = page.get_by_test_id("grant-sentence")
        expect(sentence).to_contain_text(
            "bob (General Hospital) may see one record: Observation, laboratory results"
        )
        expect(sentence).to_contain_text("to treat you, until you revoke it.")
        expect(page.get_by_text(f"record:{hemoglobin.id}")).to_be_visible()
        shoot(page, "grant-review")
        page.get_by_label("Your password, to sign").fill("not-my-password")
        page.get_by_role("button", name="Sign and grant").click()
        expect(page.get_by_text("The password is wrong.")).to_be_visible()  # next to the field
        expect(page.get_by_label("Your password, to sign")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Your password, to sign").fill(PASSWORD)
        page.get_by_role("button", name="Sign and grant").click()
        heading(page, "Granting access…").to_be_visible()
        expect(page.get_by_text("Pending: queued for the chain")).to_be_visible()
        shoot(page, "grant-pending")

        drain_outbox()  # what the relayer and indexer workers do: mine the grant, index its event
        consent = Consent.objects.get(patient_address=alice_address, grantee_address=bob_address)
        assert consent.status == "active" and consent.scope == f"record:{hemoglobin.id}"
        heading(page, "Access granted").to_be_visible()
        expect(page.get_by_text(f"Granted in block {consent.granted_block}")).to_be_visible()
        shoot(page, "grant-active")

        page.get_by_role("link", name="Profile").click()
        heading(page, "Profile").to_be_visible()
        expect(page.get_by_test_id("eth-address")).to_have_text(alice_address)
        shoot(page, "profile")

        # --- the doctor sees his new patient and opens the record, and only that one
        dpage = doctor.new_page()
        dpage.goto("/")
        sign_in(dpage, "bob")
        heading(dpage, "My patients").to_be_visible()
        shoot(dpage, "doctor-patients")
        row = dpage.get_by_role("row").filter(has=dpage.get_by_title(alice_address))
        expect(row).to_contain_text("one record")
        row.get_by_role("link").click()
        heading(dpage, re.compile(r"^Patient 0x")).to_be_visible()
        expect(dpage.get_by_role("status").filter(has_text="record")).to_have_text("1 record")
        shoot(dpage, "doctor-chart")
        dpage.get_by_role("link", name=re.compile(r"^Open Observation")).click()
        heading(dpage, "Hemoglobin").to_be_visible()
        expect(dpage.get_by_role("row", name=re.compile("Hemoglobin"))).to_contain_text("13.2")
        shoot(dpage, "doctor-record")

        # --- the patient revokes; the page follows the revocation until it is mined
        page.get_by_role("link", name="My consents").click()
        heading(page, "My consents").to_be_visible()
        consent_row = page.locator(f'tr[data-consent="{consent.id}"]')
        expect(consent_row).to_contain_text("Active")
        expect(consent_row).to_contain_text("one record")
        expect(consent_row).to_contain_text(f"Granted in block {consent.granted_block}")
        shoot(page, "consents")
        consent_row.get_by_role("button", name=re.compile("^Revoke bob's access")).click()
        revoke = page.get_by_role("form", name="Revoke bob's access")
        expect(revoke).to_contain_text("bob will no longer see one record")
        shoot(page, "revoke-confirm")
        revoke.get_by_label("Your password, to sign").fill(PASSWORD)
        revoke.get_by_role("button", name="Sign and revoke").click()
        expect(consent_row).to_contain_text("Revocation pending")

        drain_outbox()
        consent.refresh_from_db()
        assert consent.status == "revoked"
        expect(page.get_by_text(f"bob's access is revoked (block {consent.ended_block}).")).to_be_visible()
        expect(consent_row).to_contain_text("Revoked")
        expect(consent_row.get_by_role("button")).to_have_count(0)
        shoot(page, "consents-revoked")

        # --- the doctor reloads the record: refused, in words
        dpage.reload()
        heading(dpage, "Record not available").to_be_visible()
        expect(dpage.get_by_test_id("refused")).to_contain_text(
            "Access refused. The patient revoked the consent that let you open this record."
        )
        expect(dpage.get_by_text("13.2")).to_have_count(0)
        shoot(dpage, "doctor-refused")

        # --- a lost connection offers a retry; the retry works once the server answers again
        dpage.route("**/api/**", lambda route: route.abort("connectionrefused"))
        dpage.goto("/patients")
        expect(dpage.get_by_role("alert")).to_contain_text("Connection lost")
        shoot(dpage, "connection-lost")
        dpage.unroute("**/api/**")
        dpage.get_by_role("button", name="Try again").click()
        heading(dpage, "My patients").to_be_visible()
        expect(dpage.get_by_text("No patient has given you access.")).to_be_visible()

        # --- an expired session returns to sign-in, and back to the same page after
        dpage.get_by_role("link", name="Profile").click()
        heading(dpage, "Profile").to_be_visible()
        doctor.clear_cookies()  # the session ends on the server's side
        dpage.get_by_role("link", name="My patients").click()
        heading(dpage, "Sign in").to_be_visible()
        expect(dpage.get_by_text("Your session has ended.")).to_be_visible()
        sign_in(dpage, "bob")
        heading(dpage, "My patients").to_be_visible()
        expect(dpage).to_have_url(re.compile(r"/patients$"))
    finally:
        patient.close()
        doctor.close()
    assert Record.objects.filter(patient_address=alice_address).count() == 3  # her two, and the one she added
