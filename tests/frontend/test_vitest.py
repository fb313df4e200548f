"""The portal's component and logic tests (Vitest, in happy-dom) run as part of the suite."""

from __future__ import annotations

import os
import subprocess

from django.conf import settings


def test_portal_component_and_logic_tests_pass() -> None:
    result = subprocess.run(
        ["npm", "test", "--prefix", "frontend", "--silent", "--", "--reporter=dot"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    summary = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, summary
    assert " passed" in result.stdout and " failed" not in result.stdout, summary
