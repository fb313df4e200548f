"""The benchmark commands run end to end and report every figure (a smoke test: no speed is asserted;
the figures themselves are read by people, from `make bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

EXPECTED = {
    "bench_consent": {
        "gas_grant_single",
        "gas_grant_batched_per_item",
        "gas_revoke_batched_per_item",
        "relayed_grants_per_s",
        "chain_limit_grants_per_s",
        "check_p50_ms",
        "check_p99_ms",
        "eth_call_p50_ms",
        "indexer_events_per_s",
    },
    "bench_records": {
        "seal_gbps",
        "openssl_gcm_gbps",
        "seal_4k_us",
        "store_add_gbps",
        "sha256_gbps",
        "open_record_p50_ms",
        "open_record_p99_ms",
        "import_records_per_s",
        "record_anchor_gas_per_record_100",
        "record_anchor_gas_per_record_1000",
        "audit_verify_entries_per_s",
    },
}

# The smallest size each command has: bench_consent's --quick fills 10^5 consents (about a minute).
SIZE = {"bench_consent": "--smoke", "bench_records": "--quick"}


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_benchmark_reports_every_figure_as_its_last_json_line(command: str, tmp_path: Path) -> None:
    env = os.environ | {"HEALTHHASH_VAR_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "manage.py", command, SIZE[command]],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert EXPECTED[command] <= set(figures)
    assert all(isinstance(figures[name], int | float) and figures[name] > 0 for name in EXPECTED[command])
