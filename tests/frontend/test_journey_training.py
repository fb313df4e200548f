"""Journey 5 of the web portal, in Debian's chromium against the real server, chain, relayer and indexer and
a real `manage.py hospital_worker` process: General Hospital's admin creates a 3-round job, approves its
plan with the password (the page shows the plan hash and the plan in words, and follows the approval until
it is on chain), starts it, and watches the round counter and the F1 / AUROC / loss charts fill while the
worker trains; at the end the model versions show their chain references (block, transaction).

The worker is its own process, as a hospital runs it: the embedded SQLite broker (shared with this process,
which publishes the rounds' tasks), the hospital key exported by its admin, the live server's API, no
database and another KEK. The job takes one hospital (the fewest the API allows) over the demo charts of
four patients. The server side has no Celery worker here: the test aggregates each round once its update
is in and drains the outbox (relayer + indexer), at the points where the server's worker would.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from contracts.drain import drain_outbox
from federated import rounds
from federated.models import JobHospital, ModelVersion, RoundUpdate, TrainingJob
from tests.conftest import PASSWORD
from tests.federated.release_setup import _test_kek, world_fixture  # noqa: F401  (fixtures)
from tests.federated.test_worker_process import _publish_to, _start_worker, _stop
from tests.federated.worker_setup import (  # noqa: F401  (fixtures)
    Federation,
    federation_fixture,
    registry_fixture,
    training_registry_fixture,
)
from tests.frontend.test_portal_journeys import heading, shoot, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROUNDS = 3
WAIT_S = 120


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    expect.set_options(timeout=20_000)


@pytest.fixture(name="worker")
def worker_fixture(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """General Hospital's worker process on an embedded broker this process publishes to."""
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    _publish_to(broker_url, monkeypatch)
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    key_file = tmp_path / "general.key"
    call_command(
        "export_hospital_key",
        "--hospital",
        "general-hospital",
        "--out",
        str(key_file),
        "--password-file",
        str(password_file),
    )
    process, log = _start_worker(federation, broker_url, key_file, tmp_path)
    try:
        yield process, log
    finally:
        _stop(process)


def _delivered(job: TrainingJob, number: int, worker: tuple[subprocess.Popen[bytes], Path]) -> RoundUpdate:
    """General's answer to round `number`, once the worker process delivered it through the API."""
    process, log = worker
    deadline = time.monotonic() + WAIT_S
    while True:
        row = RoundUpdate.objects.filter(round__job=job, round__number=number).first()
        if row is not None and row.status != RoundUpdate.Status.DISPATCHED:
            return row
        assert process.poll() is None, f"the worker died:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"round {number} never came back:\n{log.read_text()[-4000:]}"
        time.sleep(0.25)


def _points(page: Page, metric: str) -> Any:
    return page.get_by_test_id(f"chart-{metric}").locator("[data-series='test'] circle")


def test_hospital_admin_approves_a_plan_runs_three_rounds_and_watches_the_chart_fill(
    federation: Federation,
    worker: tuple[subprocess.Popen[bytes], Path],
    live_server: Any,
    chromium: Browser,
) -> None:
    p = federation.personas
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto("/")
        sign_in(page, "hadmin")
        page.get_by_role("link", name="Training jobs").click()
        heading(page, "Training jobs").to_be_visible()
        expect(page.get_by_text("No training job yet.")).to_be_visible()

        # --- a new job: refused in the page first, then created as a draft
        page.get_by_role("link", name="New training job").click()
        heading(page, "New training job").to_be_visible()
        expect(page.get_by_label(re.compile(r"^General Hospital"))).to_be_checked()
        page.get_by_label("Rounds").fill("0")
        page.get_by_role("button", name="Create job").click()
        expect(page.get_by_text("Give the job a name.")).to_be_visible()
        expect(page.get_by_label("Rounds")).to_have_attribute("aria-invalid", "true")
        assert not TrainingJob.objects.exists()
        page.get_by_label("Name").fill("WDBC journey")
        page.get_by_label("Rounds").fill(str(ROUNDS))
        shoot(page, "admin-training-new-job")
        page.get_by_role("button", name="Create job").click()

        # --- the plan awaiting approval: its hash and what it contains, in words
        heading(page, "Training plans").to_be_visible()
        job = TrainingJob.objects.get(name="WDBC journey")
        assert job.rounds == ROUNDS and list(job.hospitals.all()) == [p.general]
        expect(page.get_by_text(f"Job #{job.pk} created.")).to_be_visible()
        expect(page.get_by_test_id("plan-hash")).to_have_text(job.plan_hash)
        words = page.get_by_role("list", name="What the plan contains")
        expect(words).to_contain_text("Model: logistic regression.")
        expect(words).to_contain_text("3 rounds; each hospital trains 2 local epochs per round")
        shoot(page, "admin-training-plans")
        page.get_by_label("Your password, to sign the approval").fill("not-the-password")
        page.get_by_role("button", name="Approve this plan").click()
        expect(page.get_by_text("The password is wrong.")).to_be_visible()
        page.get_by_label("Your password, to sign the approval").fill(PASSWORD)
        page.get_by_role("button", name="Approve this plan").click()
        expect(page.get_by_role("status").filter(has_text="Approval on its way to the chain")).to_be_visible()

        drain_outbox()  # the relayer mines the approval; the indexer marks it (and the job ready)
        participant = JobHospital.objects.get(job=job, hospital=p.general)
        assert participant.approval == JobHospital.Approval.APPROVED
        expect(page.get_by_text(f"in block {participant.approved_block}")).to_be_visible()

        # --- the job's page: start now; the worker process trains each round
        page.get_by_role("link", name="WDBC journey").click()
        heading(page, "Training job: WDBC journey").to_be_visible()
        expect(page.get_by_test_id("job-status")).to_have_text("Ready to start")
        # A seed whose per-patient split keeps one of General's two complete patients for training.
        seed = next(s for s in range(1000) if len(federation.training_patients(seed=s)) == 1)
        TrainingJob.objects.filter(pk=job.pk).update(seed=seed)
        page.get_by_role("button", name="Start now").click()
        progress = page.get_by_test_id("round-progress")
        expect(progress).to_contain_text("0 of 3 rounds done")
        expect(page.get_by_test_id("job-status")).to_have_text("Running")

        for number in range(ROUNDS + 1):
            row = _delivered(job, number, worker)
            assert row.status == RoundUpdate.Status.ACCEPTED, (row.reason_code, row.reason_detail)
            assert rounds.aggregate_round(job=job, number=number) is not None  # the server worker's part
            drain_outbox()  # the update and the model version go on chain
            if number:
                # The admin sees the counter move and one more point on each chart.
                expect(progress).to_contain_text(f"{number} of 3 rounds done")
                expect(_points(page, "f1")).to_have_count(number)
                expect(_points(page, "loss")).to_have_count(number)
                if number == 1:
                    shoot(page, "admin-training-job-running")

        expect(page.get_by_test_id("job-status")).to_have_text("Done")
        expect(progress).to_have_text("3 of 3 rounds done")
        for metric in ("f1", "auroc", "loss"):
            expect(_points(page, metric)).to_have_count(ROUNDS)
        expect(page.get_by_role("img", name="F1 over 3 rounds")).to_be_visible()

        # --- the model versions, each with its block and transaction on chain
        versions = list(ModelVersion.objects.filter(job=job).order_by("round"))
        assert [v.round for v in versions] == [0, 1, 2, 3]
        table = page.get_by_test_id("model-versions")
        for version in versions:
            assert version.chain_status == "confirmed" and version.chain_tx
            row_in_page = table.locator(f"tr[data-version='{version.round}']")
            expect(row_in_page).to_contain_text(f"block {version.chain_block}")
            expect(row_in_page.get_by_label(f"transaction {version.chain_tx}")).to_be_visible()
        shoot(page, "admin-training-job-done")

        page.get_by_role("link", name="Training jobs").click()
        expect(page.locator(f"tr[data-job='{job.pk}']")).to_contain_text("Done")
        shoot(page, "admin-training-jobs")
    finally:
        context.close()
