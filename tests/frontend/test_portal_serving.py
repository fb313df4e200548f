"""Django serves the built portal: its files by WhiteNoise (hashed assets cached for good, compressed
copies to browsers that take them), index.html at every other path outside /api/ (the app's routes),
and the API exactly as before. The first load stays within its JavaScript budget."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

FIRST_LOAD_JS_BUDGET_BYTES = 300 * 1024  # gzipped


def _body(response: Any) -> bytes:  # a FileResponse streams, an HttpResponse does not
    return b"".join(response.streaming_content) if response.streaming else response.content


def _entry_script(dist: Path) -> str:
    match = re.search(
        r'<script type="module" crossorigin src="(/assets/[^"]+\.js)"', (dist / "index.html").read_text()
    )
    assert match, "index.html names no module script"
    return match.group(1)


@pytest.mark.parametrize(
    "path", ["/", "/records", "/records/7d1c8f0e-0000-4000-8000-000000000001", "/sign-in?next=/x"]
)
def test_every_route_outside_the_api_gets_the_portal(portal_dist: Path, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert _body(response) == (portal_dist / "index.html").read_bytes()
    assert response["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_assets_are_files_cached_for_good_and_compressed(portal_dist: Path) -> None:
    script = _entry_script(portal_dist)
    plain = Client().get(script)
    assert plain.status_code == 200
    assert plain["Content-Type"].startswith("text/javascript")
    assert "immutable" in plain["Cache-Control"]
    source = _body(plain)
    assert source == (portal_dist / script.lstrip("/")).read_bytes()
    zipped = Client().get(script, headers={"accept-encoding": "gzip"})
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(_body(zipped)) == source


def test_a_missing_asset_is_a_404_not_the_page(portal_dist: Path) -> None:
    response = Client().get("/assets/index-00000000.js")
    assert response.status_code == 404
    assert b"<html" not in _body(response)


def test_the_api_is_unchanged(portal_dist: Path) -> None:
    missing = Client().get("/api/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert Client().get("/api/me").json()["error"] == "not_authenticated"


def test_the_portal_refuses_writes(portal_dist: Path) -> None:
    assert Client().post("/records").status_code == 405


def test_first_load_javascript_is_within_budget(portal_dist: Path) -> None:
    index = (portal_dist / "index.html").read_text()
    scripts = re.findall(r'(?:src|href)="(/assets/[^"]+\.js)"', index)  # entry and modulepreloads
    assert scripts
    gzipped = sum(len(gzip.compress((portal_dist / s.lstrip("/")).read_bytes(), 9)) for s in scripts)
    assert gzipped <= FIRST_LOAD_JS_BUDGET_BYTES, f"first load is {gzipped / 1024:.1f} KB of gzipped JS"
