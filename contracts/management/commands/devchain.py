"""`manage.py devchain`: run the project's dev anvil in the foreground (state under var/chain)."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contracts import client


class Command(BaseCommand):
    help = "Run the dev chain (anvil on DEV_CHAIN_PORT, state in DEV_CHAIN_STATE) until interrupted."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ETH_RPC_URL:
            raise CommandError(f"ETH_RPC_URL is set ({settings.ETH_RPC_URL}); the dev chain is not used")
        url = f"http://127.0.0.1:{settings.DEV_CHAIN_PORT}"
        if client.answers(url):
            raise CommandError(f"something already answers on {url}")
        node = client.start_dev_chain()
        self.stdout.write(f"dev chain at {node.rpc_url}, state {settings.DEV_CHAIN_STATE}; Ctrl-C stops it")
        stop = False

        def _stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop and node.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            node.stop()  # lets anvil dump its state file
        self.stdout.write("dev chain stopped")
