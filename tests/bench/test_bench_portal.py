"""`manage.py bench_portal` runs end to end and prints both of the portal's figures (a smoke test: no
speed is asserted; `make bench` prints the figures for people to read). It needs the built portal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from bench.portal import first_load_scripts

pytestmark = pytest.mark.slow


def test_bench_portal_prints_first_load_js_and_dashboard_time(capfd: pytest.CaptureFixture[str]) -> None:
    dist = Path(settings.PORTAL_DIST_DIR)
    assert (dist / "index.html").is_file(), "the portal is not built: npm run build --prefix frontend"
    # The command measures in a child process of its own state: its table reaches this process's stdout.
    call_command("bench_portal", "--records=3", "--runs=1")
    lines = capfd.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert lines[0].startswith("figure") and any(line.startswith("dashboard_ms") for line in lines)
    assert 0 < figures["js_gzip_kb"] < 10_000
    assert 0 < figures["dashboard_ms"] < 60_000
    assert figures["runs"] == 1 and figures["records"] == 3
    # The entry script is among what a first load fetches, and nothing lazy is counted.
    scripts = [path.name for path in first_load_scripts(dist)]
    assert figures["first_load_scripts"] == len(scripts)
    assert any(name.startswith("index-") for name in scripts)
    assert not any(name.startswith(("wallet-", "siwe-")) for name in scripts)
