"""`manage.py devchain`: run the project's dev anvil in the foreground (state under var/chain).

With `manage.py demo` and the test session, this is the only thing that starts a chain: every other
command and process finds no node and says so (contracts.client.ChainUnavailable).
"""

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
            raise CommandError(
                f"ETH_RPC_URL is set ({client.shown_url(settings.ETH_RPC_URL)}); the dev chain is not used"
            )
        url = client.dev_chain_url()
        if client.answers(url):
            raise CommandError(f"something already answers on {url}")
        stop = False

        def _stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        with client.running_dev_chain() as chain:  # stops anvil (which dumps its state) on the way out
            self.stdout.write(f"dev chain at {chain.url}, state {settings.DEV_CHAIN_STATE}; Ctrl-C stops it")
            try:
                while not stop and client.answers(chain.url):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        self.stdout.write("dev chain stopped")
