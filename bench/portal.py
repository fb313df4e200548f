"""The figures of the web portal (`manage.py bench_portal`): the gzip size of the JavaScript a first load
of the built portal fetches (the entry script and its modulepreload links, read from dist/index.html),
and how long the patient dashboard takes in headless Chromium, from navigation start until the records
list is on screen (the browser's own clock: `performance.now()` is measured from navigation start)."""

from __future__ import annotations

import gzip
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests

from access.identity import services as identity_services
from access.models import Role, User
from ehr import records

Say = Callable[[str], None]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PATIENT = "bench-portal-patient"
# The dashboard is interactive once its records table has rows: noted by the page itself, on its clock.
RECORDS_SHOWN = """(() => {
  const seen = () => document.querySelector("main table.cards tbody tr");
  const note = () => {
    if (window.__recordsShownAt === undefined && seen()) window.__recordsShownAt = performance.now();
  };
  new MutationObserver(note).observe(document, { childList: true, subtree: true });
})();"""


class _FirstLoad(HTMLParser):
    """The entry script and the modulepreload links of index.html: what a first load fetches."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and named.get("type") == "module" and named.get("src"):
            self.scripts.append(str(named["src"]))
        if tag == "link" and named.get("rel") == "modulepreload" and named.get("href"):
            self.scripts.append(str(named["href"]))


def first_load_scripts(dist: Path) -> list[Path]:
    """The files of the JavaScript a first load fetches, each once, in index.html's order."""
    parser = _FirstLoad()
    parser.feed((dist / "index.html").read_text(encoding="utf-8"))
    files = [dist / src.split("?")[0].lstrip("/") for src in dict.fromkeys(parser.scripts)]
    missing = [str(f) for f in files if not f.is_file()]
    if not files or missing:
        raise FileNotFoundError(f"the built portal lacks its first-load scripts: {missing or 'none listed'}")
    return files


def js_gzip_kb(dist: Path) -> float:
    """KiB of first-load JavaScript once gzipped (level 9, as the build precompresses it)."""
    total = sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in first_load_scripts(dist))
    return round(total / 1024, 1)


def observation(value: float, day: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "effectiveDateTime": f"2026-11-{1 + day % 28:02d}T09:30:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


def condition(name: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"text": name},
    }


@dataclass(frozen=True)
class Patient:
    username: str
    password: str


def seed_patient(*, record_count: int) -> Patient:
    """A patient with a chart like the demo's: lab results and a few conditions."""
    password = secrets.token_urlsafe(16)
    patient: User = identity_services.register_user(username=PATIENT, password=password, role=Role.PATIENT)
    for n in range(record_count):
        resource = condition(f"Condition {n}") if n % 5 == 4 else observation(12.0 + (n % 30) / 10, n)
        records.create_record(actor=patient, patient=patient, resource=resource)
    return Patient(PATIENT, password)


def wait_until_serving(url: str, *, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/auth/csrf", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"nothing serves {url} after {within_s:g} s")


def dashboard_ms(url: str, patient: Patient, *, runs: int, say: Say) -> list[float]:
    """Per run, a fresh browser context (empty cache, the patient's session cookie): navigation start
    to the records list on screen, in ms. The first run is a warm-up of the server and is left out."""
    from playwright.sync_api import sync_playwright

    timings: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            state = _signed_in_state(browser, url, patient)
            for run in range(runs + 1):
                context = browser.new_context(
                    base_url=url, storage_state=state, viewport={"width": 1280, "height": 800}
                )
                try:
                    context.add_init_script(RECORDS_SHOWN)
                    page = context.new_page()
                    page.goto("/records")
                    page.wait_for_function("() => window.__recordsShownAt !== undefined", timeout=30_000)
                    shown: float = page.evaluate("() => window.__recordsShownAt")
                finally:
                    context.close()
                if run:
                    timings.append(shown)
                say(f"dashboard run {run}{' (warm-up)' if not run else ''}: {shown:.0f} ms")
        finally:
            browser.close()
    return timings


def _signed_in_state(browser: Any, url: str, patient: Patient) -> Any:
    context = browser.new_context(base_url=url)
    try:
        context.request.get("/api/auth/csrf")
        token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
        answer = context.request.post(
            "/api/auth/login",
            data={"username": patient.username, "password": patient.password},
            headers={"X-CSRFToken": token, "Referer": url},
        )
        if not answer.ok:
            raise RuntimeError(f"the bench patient cannot sign in: {answer.status} {answer.text()[:200]}")
        return context.storage_state()
    finally:
        context.close()


def median_ms(timings: list[float]) -> float:
    return round(statistics.median(timings), 1)
