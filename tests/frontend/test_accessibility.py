"""Accessibility of the web portal's main screens, in Debian's chromium against the real server and chain.

axe-core (the npm package the portal's dev dependencies pin; its `axe.min.js` is injected into every page)
runs on each main screen of each role: no violation of impact "serious" or "critical" may remain. Each
screen is also photographed at 360 px and 1280 px into VAR_DIR/screenshots/, and at 360 px none may
scroll sideways.

The admin screens that axe checks are also driven once against the real API and chain: a hospital admin
registers a doctor, a consortium admin a hospital, and each sees the entry go from pending to active
once the relayer and the indexer have done their work.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from access.audit import breakglass
from access.models import Doctor, Hospital
from contracts.drain import drain_outbox
from ehr import records
from healthhash.sealing import new_kek_entry
from tests.conftest import PASSWORD, Personas, address_of
from tests.frontend.test_portal_journeys import ASTHMA, HEMOGLOBIN, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AXE = Path(settings.BASE_DIR) / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (360, 1280)
BLOCKING = ("serious", "critical")
RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


@pytest.fixture(autouse=True)
def _portal_settings(settings: SettingsWrapper) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-a11y")
    expect.set_options(timeout=20_000)


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [v for v in violations if v["impact"] in BLOCKING]


def settle(page: Page, title: str | re.Pattern[str]) -> None:
    """The screen is shown and has read what it shows (no "Loading …" left)."""
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    expect(page.locator(".loading")).to_have_count(0)


def shoot(page: Page, name: str) -> list[str]:
    """Photographs at each width; returns the overflow found at a phone's width, if any."""
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(50)  # one layout pass at the new width
        page.screenshot(path=folder / f"a11y-{name}-{width}.png", full_page=True)
        if width == 360:
            overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                problems.append(f"{name} scrolls sideways by {overflow}px at 360 px")
    page.set_viewport_size({"width": 1280, "height": 800})
    return problems


def signed_in(browser: Browser, base_url: str, username: str, home: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.goto("/")
    sign_in(page, username)
    settle(page, home)
    return context, page


def test_every_main_screen_passes_axe_and_fits_a_phone(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    assert AXE.is_file(), f"{AXE} is missing: npm ci --prefix frontend"
    p = personas
    alice = address_of(p.alice)
    hemoglobin = records.create_record(actor=p.alice, patient=p.alice, resource=HEMOGLOBIN)
    records.create_record(actor=p.alice, patient=p.alice, resource=ASTHMA)
    granted = p.client_for(p.alice).post(
        "/api/consents",
        {"grantee": address_of(p.bob), "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD},
        format="json",
    )
    assert granted.status_code == 202, granted.content
    drain_outbox()
    asked = p.client_for(p.carol).post(
        "/api/access-requests",
        {"patient": alice, "scope": "category:laboratory", "purpose": "TREATMENT", "reason": "Follow-up"},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    breakglass.start_break_glass(
        doctor=p.bob, patient_address=alice, reason="Unconscious on arrival in the ER"
    )

    # (role's user, home heading, [(path, heading, screenshot name)])
    screens: list[tuple[str, str, list[tuple[str, str | re.Pattern[str], str]]]] = [
        (
            "alice",
            "My records",
            [
                ("/records", "My records", "patient-records"),
                (f"/records/{hemoglobin.id}", "Hemoglobin", "patient-record"),
                ("/consents", "My consents", "patient-consents"),
                ("/consents/new", "Grant access", "patient-grant"),
                ("/access-log", "Access log", "patient-access-log"),
                ("/records/new", "Add a record", "patient-add-record"),
                ("/training-use", "Training use", "patient-training-use"),
                ("/requests", "Access requests", "patient-requests"),
                ("/profile", "Profile", "patient-profile"),
            ],
        ),
        (
            "bob",
            "My patients",
            [
                ("/patients", "My patients", "doctor-patients"),
                (f"/patients/{alice}", re.compile(r"^Patient 0x"), "doctor-chart"),
                ("/requests", re.compile("Request access"), "doctor-request-access"),
                ("/break-glass", "Break-glass", "doctor-break-glass"),
            ],
        ),
        (
            "hadmin",
            "Doctors",
            [
                ("/doctors", "Doctors", "admin-doctors"),
                ("/break-glass/reviews", "Break-glass reviews", "admin-break-glass-reviews"),
            ],
        ),
        ("cadmin", "Hospitals", [("/hospitals", "Hospitals", "consortium-hospitals")]),
    ]

    found: dict[str, list[dict[str, Any]]] = {}
    overflows: list[str] = []
    signed_out = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    signed_out.add_init_script(path=str(AXE))
    try:
        page = signed_out.new_page()
        page.goto("/sign-in")
        settle(page, "Sign in")
        found["sign-in"] = blocking_violations(page)
        overflows += shoot(page, "sign-in")
    finally:
        signed_out.close()

    for username, home, paths in screens:
        context, page = signed_in(chromium, live_server.url, username, home)
        try:
            for path, title, name in paths:
                page.goto(path)
                settle(page, title)
                found[name] = blocking_violations(page)
                overflows += shoot(page, name)
            if username == "alice":
                # The header's notifications, opened: the break-glass, carol's request.
                page.get_by_role("button", name=re.compile(r"^Notifications")).click()
                panel = page.locator("#notifications-panel")
                expect(panel).to_contain_text("opened your chart in an emergency")
                expect(panel).to_contain_text("1 access request waits for your answer.")
                found["notifications"] = blocking_violations(page)
                overflows += shoot(page, "notifications")
        finally:
            context.close()

    assert len(found) == 18
    failing = {name: violations for name, violations in found.items() if violations}
    assert not failing, failing
    assert not overflows, overflows


def test_hospital_admin_registers_a_doctor_and_sees_it_go_from_pending_to_active(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    """The Doctors screen against the real API and chain: the registration is pending until the relayer
    mines it and the indexer mirrors it, then active; the new doctor is in the Directory."""
    context, page = signed_in(chromium, live_server.url, "hadmin", "Doctors")
    try:
        page.get_by_label("Username").fill("dana")
        page.get_by_label("The doctor's password").fill(PASSWORD)
        page.get_by_label("Your password, to sign").fill(PASSWORD)
        page.get_by_role("button", name="Sign and register").click()
        row = page.locator("tr[data-doctor='dana']")
        expect(row).to_contain_text("Pending")
        assert not Doctor.objects.get(user__username="dana").active
        drain_outbox()  # what the relayer and indexer workers do
        expect(row).to_contain_text("Active")
        expect(page.get_by_text("dana: Active.")).to_be_visible()
        assert Doctor.objects.get(user__username="dana", hospital=personas.general).active
    finally:
        context.close()


def test_consortium_admin_registers_a_hospital_and_sees_it_go_from_pending_to_active(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    """The Hospitals screen against the real API and chain, with a new admin for the new hospital."""
    context, page = signed_in(chromium, live_server.url, "cadmin", "Hospitals")
    try:
        page.get_by_label("Name", exact=True).fill("East Hospital")
        page.get_by_label("Short name").fill("city-clinic")  # taken: refused next to the field
        page.get_by_label("Admin's username").fill("east-admin")
        page.get_by_label("Admin's password (for a new admin)").fill(PASSWORD)
        page.get_by_label("Your password, to sign").fill(PASSWORD)
        page.get_by_role("button", name="Sign and register").click()
        expect(page.get_by_label("Short name")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Short name").fill("east")
        page.get_by_role("button", name="Sign and register").click()
        row = page.locator("tr[data-hospital='east']")
        expect(row).to_contain_text("Pending")
        drain_outbox()
        expect(row).to_contain_text("Active")
        assert Hospital.objects.get(slug="east").active
        assert personas.clinic.slug == "city-clinic"
    finally:
        context.close()
