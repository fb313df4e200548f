"""Relay and index in turn until nothing waits for the chain: the inline loop that the demo,
`anchor_audit --wait` and the tests use where a deployment has a worker doing both."""

from __future__ import annotations

import time
from collections.abc import Callable

from contracts import indexer, relayer
from contracts.models import OutboxItem


def drain_outbox(
    *, timeout_s: float = 300.0, batch: int = 500, on_pass: Callable[[int], None] | None = None
) -> None:
    """Relay and index until no outbox item is pending or sent; TimeoutError after `timeout_s`.

    `on_pass(waiting)` is told after each relay + index pass how many items still wait (a progress bar).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        relayer.relay_once(max_items=batch)
        indexer.sync_chain()
        waiting = OutboxItem.objects.filter(status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT])
        if on_pass is not None:
            on_pass(waiting.count())
        if not waiting.exists():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{waiting.count()} outbox items still waiting for the chain")
        time.sleep(0.2)
