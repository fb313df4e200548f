"""The portal is typed against the API's contract: the committed OpenAPI schema and its TypeScript types
must be exactly what the code generates, so a changed endpoint fails here (and in `tsc`), not in a
user's browser. Regenerate both with `npm run schema --prefix frontend` (frontend/scripts/gen_schema.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

FRONTEND = Path(settings.BASE_DIR) / "frontend"
SCHEMA = FRONTEND / "src" / "api" / "schema.yaml"
TYPES = FRONTEND / "src" / "api" / "schema.d.ts"
REGENERATE = "regenerate with `npm run schema --prefix frontend` and commit both files"


def _generated_schema(tmp_path: Path) -> str:
    # As the script does: on the embedded defaults (SQLite), since integer limits follow the engine.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["HEALTHHASH_VAR_DIR"] = str(tmp_path / "var")
    out = tmp_path / "schema.yaml"
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--file", str(out)],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out.read_text()


def test_committed_schema_is_what_the_api_generates(tmp_path: Path) -> None:
    assert SCHEMA.read_text() == _generated_schema(tmp_path), f"the API changed: {REGENERATE}"


def test_committed_types_are_generated_from_the_committed_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.d.ts"
    subprocess.run(
        ["node_modules/.bin/openapi-typescript", "src/api/schema.yaml", "-o", str(out)],
        cwd=FRONTEND,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert TYPES.read_text() == out.read_text(), f"schema.d.ts is stale: {REGENERATE}"
