"""The README's "Try the API with curl" runs as written: its `sh` blocks, in order, in bash with curl and jq,
against a live server on the test chain while the relayer and the indexer run beside it (as `make serve`
runs them). And what the README says about state: beat writes no schedule file outside the database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from celery.beat import Service
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from access.models import AccessLogEntry, Consent
from contracts.drain import drain_outbox
from healthhash.celery import app as celery_app
from tests.conftest import PASSWORD, Personas, address_of

README = Path(settings.BASE_DIR) / "README.md"
VARIABLES = "<!-- walkthrough: variables -->"
STEP = "<!-- walkthrough -->"
SCRIPT_TIMEOUT_S = 120.0


def readme_blocks(marker: str) -> list[str]:
    """The `sh` blocks that follow `marker` in the README, in order."""
    return re.findall(re.escape(marker) + r"\n```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_variables_block_sets_exactly_what_the_walkthrough_test_sets() -> None:
    [block] = readme_blocks(VARIABLES)
    assert set(re.findall(r"\b([A-Z_]+)=", block)) == {"HH", "PASSWORD", "PATIENT", "DOCTOR"}
    assert "var/secrets/demo_password" in block  # where the demo logins' password is kept


def consent_block(p: Personas) -> int | None:
    return Consent.objects.get(patient=p.alice).granted_block


def run_while_relaying(script: str, env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` in bash; meanwhile relay and index, as the relayer and indexer processes would."""
    with out.open("w") as stdout:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        deadline = time.monotonic() + SCRIPT_TIMEOUT_S
        while process.poll() is None:
            drain_outbox(timeout_s=30.0)
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"the walkthrough ran over {SCRIPT_TIMEOUT_S} s:\n{out.read_text()}")
            time.sleep(0.2)
    return subprocess.CompletedProcess(process.args, process.returncode, out.read_text(), "")


@pytest.mark.django_db(transaction=True)
def test_walkthrough_grants_opens_revokes_and_is_refused(
    personas: Personas, live_server: Any, tmp_path: Path
) -> None:
    p = personas
    steps = readme_blocks(STEP)
    assert len(steps) >= 5, "the walkthrough's blocks are marked with <!-- walkthrough -->"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "HH": live_server.url,
        "PASSWORD": PASSWORD,
        "PATIENT": "alice",
        "DOCTOR": "bob",
    }
    result = run_while_relaying("\n".join(steps), env, tmp_path / "walkthrough.out")
    assert result.returncode == 0, result.stdout

    # The doctor's refusal once the revocation is mined, then the check as of the grant's block.
    *_, refusal, as_of = result.stdout.strip().splitlines()
    body, _, status = refusal.rpartition(" ")
    assert status == "403", result.stdout
    assert json.loads(body)["error"] == "revoked"
    assert json.loads(as_of) == {"allowed": True, "reason": "consent", "at_block": consent_block(p)}
    # Along the way: the patient's own address, the grant mined, the doctor's open with its legal basis.
    assert address_of(p.alice) in result.stdout
    assert '"status": "active"' in result.stdout and '"revocation_pending": true' in result.stdout
    assert '"reason": "consent"' in result.stdout

    # What the chain and the access log say happened, not only what curl printed.
    [consent] = Consent.objects.filter(patient=p.alice)
    assert consent.status == "revoked" and consent.grantee_address == address_of(p.bob)
    assert consent.granted_block is not None and consent.ended_block is not None
    by_bob = AccessLogEntry.objects.filter(
        patient_address=address_of(p.alice), actor=p.bob, action__in=["open", "deny"]
    )
    [(allowed_basis, _), (_, denied_reason)] = by_bob.order_by("seq").values_list("legal_basis", "reason")
    assert allowed_basis.startswith("consent:") and allowed_basis.endswith(f"@{consent.granted_block}")
    assert denied_reason == "revoked"


@pytest.mark.django_db(transaction=True)  # the scheduler closes stale connections, as beat does
def test_beat_without_a_scheduler_option_keeps_its_schedule_in_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`celery -A healthhash beat` (or `worker -B`) without --scheduler: no celerybeat-schedule file in
    the working directory (the repository root, run from there); HEALTHHASH_VAR_DIR and the database
    hold all state."""
    monkeypatch.chdir(tmp_path)
    # What `celery beat` and `worker -B` pick when no --scheduler is given (celery.apps.beat.Beat).
    scheduler_cls = celery_app.either("beat_scheduler", None)
    scheduler = Service(app=celery_app, scheduler_cls=scheduler_cls).get_scheduler()
    try:
        assert isinstance(scheduler, DatabaseScheduler)
        scheduler.sync()
    finally:
        scheduler.close()
    assert list(tmp_path.iterdir()) == []
