"""`manage.py serve` (what `make serve` runs): the production shape on this machine. Migrates, finds or
starts the chain (the project's dev chain when ETH_RPC_URL is empty, with the demo consortium deployed on
it), then runs gunicorn, the Celery worker with beat, the relayer and the indexer (demo/processes.py) until
Ctrl-C or SIGTERM, which stop every one of them."""

from __future__ import annotations

import logging.config
import os
import signal
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from contracts import chain_identity, client, indexer
from contracts.health import check_chain
from demo import processes
from healthhash import logs


class Command(BaseCommand):
    help = "Serve HealthHash as production would: gunicorn, Celery worker with beat, relayer, indexer."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="HOST:PORT gunicorn binds")
        parser.add_argument("--workers", type=int, default=settings.WEB_CONCURRENCY)
        parser.add_argument("--threads", type=int, default=settings.WEB_THREADS)
        parser.add_argument(
            "--worker-class",
            choices=["gthread", "sync"],
            default="gthread",
            help="gunicorn's (sync: one request at a time per process, --threads ignored; for comparison)",
        )
        parser.add_argument(
            "--log-format",
            choices=["json", "plain"],
            default=os.environ.get("LOG_FORMAT") or "json",
            help="of every process's log lines (default: LOG_FORMAT, else json)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, _, port = options["addr"].rpartition(":")
        web = processes.WebOptions(
            host or "127.0.0.1", int(port), options["workers"], options["threads"], options["worker_class"]
        )
        if not processes.port_is_free(web.host, web.port):
            raise CommandError(f"{web.host}:{web.port} is in use; pick another with --addr")
        logging.config.dictConfig(logs.logging_config(options["log_format"], level="INFO"))
        processes.child_environment(log_format=options["log_format"])
        # Ctrl-C and `kill` both unwind the `with` blocks below, which stop every process. The first signal
        # does it; later ones are ignored so that the clean-up runs to its end.
        signal.signal(signal.SIGINT, _stop_once)
        signal.signal(signal.SIGTERM, _stop_once)
        call_command("migrate", verbosity=0)
        with client.running_dev_chain() if not settings.ETH_RPC_URL else nullcontext() as chain:
            if chain is None:
                self.stdout.write(f"chain: {client.shown_url(settings.ETH_RPC_URL)} (ETH_RPC_URL)")
            else:
                started = "started" if chain.started else "found"
                self.stdout.write(f"chain: {started} the dev chain at {chain.url}")
                call_command("seed_demo")  # deploys the contracts (idempotent) and the demo consortium
            self._serve(web)

    def _serve(self, web: processes.WebOptions) -> None:
        say = self.stdout.write
        chain = check_chain(timeout_s=5.0)
        if chain.status != "ok":
            say(f"chain: {chain.detail} (the relayer and the indexer keep trying)")
        else:
            self._catch_up_index()
        removed = processes.drop_chain_loops_from_beat()
        if removed:
            say(
                f"beat: removed {removed} relay/sync schedule rows (the relayer and indexer run on their own)"
            )
        processes.release_database()
        shape = f"{web.workers} {web.worker_class} web workers" + (
            f" x {web.threads} threads" if web.worker_class == "gthread" else ""
        )
        say(f"starting {shape}, the worker, the relayer and the indexer:")
        try:
            with processes.running_processes(web, say) as children:
                try:
                    healthy = processes.wait_until_healthy(web.url, children)
                    for line in processes.describe_health(web.url):
                        say(line)
                    state = "serving" if healthy else "serving, NOT healthy (see above)"
                    say(f"HealthHash {state} at {web.url}/api/ (health: /api/health). Ctrl-C stops all.")
                    processes.supervise(children)
                finally:
                    say("stopping the web, the worker, the relayer and the indexer")
        except processes.ChildExited as exc:
            raise CommandError(f"{exc}; stopped the others") from exc
        finally:
            say("stopped")

    def _catch_up_index(self) -> None:
        """One indexer pass before the web and the relayer start. After a database restored from a backup,
        however recent, the first answers then come from an index that has read the chain's changes since
        (a revocation mined after the backup); MAX_INDEX_LAG_BLOCKS's guard only covers older backups. In a
        normal start the index is current and the pass reads a few blocks."""
        try:
            report = indexer.sync_chain()
        except chain_identity.WrongChain as exc:
            self.stdout.write(f"index: {exc.detail}")
            return
        except client.ChainUnavailable as exc:
            self.stdout.write(f"index: not caught up before serving ({exc}); the indexer keeps trying")
            return
        self.stdout.write(
            f"index: caught up with the chain (head {report.head}): {report.new_events} new events"
        )


def _stop_once(signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)
