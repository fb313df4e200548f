"""Fixtures for the web portal's tests: the built portal, and Debian's chromium driven by Playwright.

The browser is this module's own (not pytest-playwright's session-wide `browser`): Playwright's sync
API marks the main thread as running an event loop from its first call until it stops, and Django
refuses ORM calls from such a thread, so the browser lives only as long as the tests that use it, with
DJANGO_ALLOW_ASYNC_UNSAFE set for exactly that span (the test's own ORM calls run between browser
calls, never inside one). Chromium is Debian's (/usr/bin/chromium, installed by .ci/run when missing);
Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# What a root user on a machine without a display and without outside network needs.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture(scope="session")
def portal_dist() -> Path:
    """The built portal; `make setup` builds it (frontend/dist/.built)."""
    dist = Path(settings.PORTAL_DIST_DIR)
    assert (dist / "index.html").is_file(), f"the portal is not built in {dist}: run `make setup`"
    return dist


@pytest.fixture(scope="module")
def chromium(portal_dist: Path) -> Iterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install -y chromium"
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        asyncio._set_running_loop(None)  # what Playwright's last sync call left set, in case it did
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
