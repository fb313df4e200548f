"""`manage.py bench_portal [--records 40] [--runs 5]`: the web portal's figures; a table, then one JSON line.

`js_gzip_kb`: the JavaScript a first load of the built portal fetches (frontend/dist/index.html's entry
script and modulepreload links), gzipped. `dashboard_ms`: the patient dashboard in headless Chromium
against a local gunicorn serving the portal and the API, from navigation start until the records list is
on screen (the browser's performance clock), median of `--runs` cold page loads after one warm-up.

It runs in a state of its own (a folder under var/tmp with its SQLite database, store and secrets): the
command starts itself again inside that state, seeds one patient with a demo-like chart, serves it with
gunicorn on a free port and drives Debian's chromium. No chain is needed: the dashboard reads none.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from bench import portal
from bench.own_state import own_state, run_again_inside, sigterm_unwinds, stop_signals
from bench.report import report_figures
from contracts.node import free_port
from demo import processes

INSIDE = "HEALTHHASH_BENCH_PORTAL_INSIDE"
TARGETS = {"js_gzip_kb": ("<=", 300.0), "dashboard_ms": ("<=", 1500.0)}


class Command(BaseCommand):
    help = "The web portal's figures: first-load JS gzipped (KB) and the patient dashboard's time (ms)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--records", type=int, default=40, help="records in the patient's chart")
        parser.add_argument("--runs", type=int, default=5, help="measured page loads, after one warm-up")
        parser.add_argument("--keep", action="store_true", help="keep the state folder (and its logs)")

    def handle(self, *args: Any, **options: Any) -> None:
        dist = Path(settings.PORTAL_DIST_DIR)
        if not (dist / "index.html").is_file():
            raise CommandError(f"the portal is not built in {dist}: npm run build --prefix frontend")
        if os.environ.get(INSIDE) == "1":
            stop_signals()
            self._inside(options, dist)
        else:
            with sigterm_unwinds():
                self._outside(options)

    def _outside(self, options: dict[str, Any]) -> None:
        with own_state("hh-bench-portal-", keep=options["keep"], say=self.stderr.write) as state:
            env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
            env |= {INSIDE: "1", "HEALTHHASH_VAR_DIR": str(state)}
            argv = [f"--records={options['records']}", f"--runs={options['runs']}"]
            run_again_inside("bench_portal", argv, env)

    def _inside(self, options: dict[str, Any], dist: Path) -> None:
        say = self.stderr.write
        call_command("migrate", verbosity=0, interactive=False)
        say(f"setup: a patient with {options['records']} records")
        patient = portal.seed_patient(record_count=options["records"])
        processes.release_database()  # gunicorn's workers open their own connections
        web = processes.WebOptions(host="127.0.0.1", port=free_port(), workers=2, threads=4)
        folder = Path(settings.VAR_DIR)
        with (folder / "web.out").open("wb") as out, (folder / "web.err").open("wb") as err:
            server = subprocess.Popen(processes.web_argv(web), stdout=out, stderr=err)  # noqa: S603
        try:
            portal.wait_until_serving(web.url)
            timings = portal.dashboard_ms(web.url, patient, runs=options["runs"], say=say)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        figures = {
            "js_gzip_kb": portal.js_gzip_kb(dist),
            "first_load_scripts": len(portal.first_load_scripts(dist)),
            "dashboard_ms": portal.median_ms(timings),
            "dashboard_max_ms": round(max(timings), 1),
            "records": options["records"],
            "runs": len(timings),
        }
        report_figures(self.stdout.write, figures, TARGETS)
