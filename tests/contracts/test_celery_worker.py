"""A real Celery worker on the configured broker (the filesystem transport on the embedded stack,
Redis in CI's second run) relays a grant that the API accepted: the kick after commit reaches it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from access.models import Consent
from contracts import outbox
from healthhash.celery import app as celery_app
from healthhash.database_url import current_database_url
from tests.conftest import PASSWORD, Personas

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(personas: Personas, tmp_path: Path):
    """`celery worker` in its own process, on this test's database, chain and relayer key."""
    env = os.environ | {
        "DATABASE_URL": current_database_url(),
        "ETH_RPC_URL": settings.ETH_RPC_URL,
        "RELAYER_PRIVATE_KEY": settings.RELAYER_PRIVATE_KEY,
        "HEALTHHASH_KEK": settings.KEY_ENCRYPTION_KEYS,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HEALTHHASH_VAR_DIR": str(settings.VAR_DIR),
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "healthhash",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "info",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_worker_relays_a_grant_kicked_after_commit(
    personas: Personas, worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = personas
    # The suite parks kicks in memory://; this test wants them on the real broker.
    monkeypatch.setattr(celery_app.conf, "broker_url", settings.CELERY_BROKER_URL)
    monkeypatch.setattr(outbox, "_last_kick", 0.0)
    body = {"grantee": p.bob.eth_address, "scope": "chart", "purpose": "TREATMENT", "password": PASSWORD}
    response = p.client_for(p.alice).post("/api/consents", body, format="json")
    assert response.status_code == 202, response.json()

    deadline = time.monotonic() + 90
    consent = Consent.objects.get(pk=response.json()["id"])
    while consent.status == "pending" and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.25)
        consent.refresh_from_db()
    assert worker.poll() is None, "the worker died; see worker.log in the test's tmp_path"
    assert consent.status == "active"
    assert consent.grant_tx_hash.startswith("0x")
    assert consent.grant_outbox is not None and consent.grant_outbox.status == "confirmed"
