"""A database restored from a backup a few blocks old, under `manage.py serve`, as an operator does it:
the backup taken while serving (SQLite's online backup), then a few opens anchored on chain and the consent
revoked, then everything stopped, the file restored, and `serve` started again, without running `sync_chain`
by hand first. Nothing stale is answered (the doctor is refused: the revocation mined after the backup is
read before the web starts) and no sequence number is handed out twice (the patient's next entry skips the
seqs the lost anchored batch commits to). `verify_audit` then reports the loss, and no reuse.

SQLite only: the restore is a file copy through SQLite's backup API. On PostgreSQL the same path goes
through pg_dump/pg_restore, which this test does not script; the order it checks (index before answers,
lost anchors learnt before writes) is the same code on both."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from access.models import AccessLogEntry, AuditAnchorBatch, AuditBatchStatus
from contracts.node import free_port
from tests.demo.test_serve import (
    REPO,
    SERVING,
    Api,
    _said,
    _serve_env,
    _start_serve,
    _stop_for_sure,
    _wait_for,
)
from tests.ehr.conftest import observation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc"),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="restores a SQLite file (see the docstring)"),
]


def _copy_sqlite(source: str | Path, target: str | Path) -> None:
    """SQLite's online backup: consistent while other processes write, and safe over an open database."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _serving(process: subprocess.Popen[bytes], folder: Path, times: int) -> bool:
    assert process.poll() is None, _said(folder)[-3000:] + (folder / "err").read_text()[-3000:]
    return _said(folder).count(SERVING) >= times


def _manage(folder: Path, chain_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=_serve_env(folder, chain_port),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_after_a_restore_a_few_blocks_old_answers_nothing_stale_and_reuses_no_seq(
    tmp_path: Path,
) -> None:
    web_port, chain_port = free_port(), free_port()
    url = f"http://127.0.0.1:{web_port}"
    database = connection.settings_dict["NAME"]
    process = _start_serve(tmp_path, web_port, chain_port)
    try:
        _wait_for("serve", lambda: _serving(process, tmp_path, 1), timeout_s=240)
        password = (tmp_path / "var" / "secrets" / "demo_password").read_text().strip()
        alice, house = Api(url, "alice", password), Api(url, "dr-house", password)
        record_id = alice.post("/api/records", {"resource": observation()}).json()["id"]
        body = {"grantee": house.me["eth_address"], "scope": "chart", "purpose": "TREATMENT"}
        consent_id = alice.post("/api/consents", {**body, "password": password}).json()["id"]
        _wait_for(
            "the grant to be mined and indexed",
            lambda: alice.get(f"/api/consents/{consent_id}").json()["status"] == "active",
            timeout_s=60,
        )
        assert house.get(f"/api/records/{record_id}").status_code == 200
        backup = tmp_path / "backup.sqlite3"
        _copy_sqlite(database, backup)

        # After the backup: three more opens, anchored on chain; then the consent is revoked on chain.
        for _ in range(3):
            assert house.get(f"/api/records/{record_id}").status_code == 200
        patient = alice.me["eth_address"]
        lost_top = max(AccessLogEntry.objects.filter(patient_address=patient).values_list("seq", flat=True))
        anchored = _manage(tmp_path, chain_port, "anchor_audit")
        assert anchored.returncode == 0, anchored.stderr
        _wait_for(
            "the relayer process to anchor the batch",
            lambda: AuditAnchorBatch.objects.filter(status=AuditBatchStatus.ANCHORED).exists(),
            timeout_s=60,
        )
        revoked = alice.post(f"/api/consents/{consent_id}/revoke", {"password": password})
        assert revoked.status_code == 202, revoked.text
        _wait_for(
            "the revocation to be mined and indexed",
            lambda: alice.get(f"/api/consents/{consent_id}").json()["status"] == "revoked",
            timeout_s=60,
        )

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 128 + signal.SIGINT
        connection.close()
        _copy_sqlite(backup, database)  # the restore: the three opens, the batch and the revocation gone
        assert AccessLogEntry.objects.filter(patient_address=patient).count() < lost_top

        process = _start_serve(tmp_path, web_port, chain_port)
        _wait_for("serve again", lambda: _serving(process, tmp_path, 2), timeout_s=240)
        assert _said(tmp_path).count("index: caught up with the chain") == 2  # each start, before the web
        assert house.get(f"/api/records/{record_id}").status_code in (403, 404)  # not the backup's "active"
        assert alice.get(f"/api/consents/{consent_id}").json()["status"] == "revoked"
        assert alice.get(f"/api/records/{record_id}").status_code == 200  # her own open, logged
        newest = max(AccessLogEntry.objects.filter(patient_address=patient).values_list("seq", flat=True))
        assert newest > lost_top  # never one of the seqs the lost anchored root commits to

        verified = _manage(tmp_path, chain_port, "verify_audit", "--json")
        assert verified.returncode == 1  # the loss stays reported for good
        kinds = {found["kind"] for found in json.loads(verified.stdout.strip().splitlines()[-1])["breaks"]}
        assert "anchored_batch_unknown" in kinds and "missing_entry" in kinds
        assert "seq_maybe_reused" not in kinds
    finally:
        _stop_for_sure(process)
