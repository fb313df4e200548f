"""The outbox: a service that needs a chain write adds an item INSIDE its own transaction.atomic, so the
item commits (or rolls back) with the service's rows; the relayer is kicked only after commit.

Items are typed (`contracts.relayer_kinds`: ConsentGrantItem, RecordRootItem, ...): each knows its
kind name, the payload stored for the relayer and its idempotency key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from contracts import client
from contracts.models import OutboxItem
from contracts.relayer_kinds import BadItem, RelayItem, get_kind
from healthhash.errors import DomainError

log = logging.getLogger(__name__)


class BadOutboxItem(DomainError):
    code = "bad_outbox_item"


def _checked_payload(item: RelayItem) -> dict[str, Any]:
    """The item's payload, after checking that its kind can encode it (so a malformed item fails the
    caller's request instead of failing later in the relayer)."""
    payload = item.payload
    try:
        get_kind(item.kind).encode_item(payload)
    except BadItem as exc:
        raise BadOutboxItem(str(exc), field="payload") from exc
    return payload


def enqueue(item: RelayItem, *, idempotency_key: str | None = None) -> OutboxItem:
    """Queue one chain write; an existing idempotency key returns the existing item (no duplicate).

    The key is the item's own unless `idempotency_key` is given (a test that queues a replay on purpose).
    """
    payload = _checked_payload(item)
    key = idempotency_key or item.idempotency_key
    existing = OutboxItem.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    try:
        # The savepoint keeps the caller's transaction usable if a concurrent enqueue wins the race.
        with transaction.atomic():
            row = OutboxItem.objects.create(kind=item.kind, payload=payload, idempotency_key=key)
    except IntegrityError:
        return OutboxItem.objects.get(idempotency_key=key)
    transaction.on_commit(kick_relayer)
    return row


def enqueue_many(items: Iterable[RelayItem]) -> list[OutboxItem]:
    """Queue many fresh chain writes in one INSERT.

    For callers whose keys are new by construction (fresh record ids, versions checked under the same
    transaction); a key that exists already fails the caller's transaction instead of returning the
    old row. Payloads are checked exactly as `enqueue` checks them.
    """
    rows = [
        OutboxItem(kind=item.kind, payload=_checked_payload(item), idempotency_key=item.idempotency_key)
        for item in items
    ]
    created = OutboxItem.objects.bulk_create(rows, batch_size=500)
    if created:
        transaction.on_commit(kick_relayer)
    return created


_KICK_INTERVAL_S = 0.25
_last_kick = 0.0


def kick_relayer() -> None:
    """Ask a worker to relay now; a broker failure must not break the request (beat retries anyway).

    At most one kick per process every quarter second: a relay run takes every pending item, so a
    burst of commits needs one kick, not one broker message each (they cost ~1 ms apiece).
    """
    global _last_kick
    now = time.monotonic()
    if now - _last_kick < _KICK_INTERVAL_S:
        return
    _last_kick = now
    try:
        from contracts.tasks import relay_outbox

        relay_outbox.delay()
    except Exception:  # any broker error is logged and swallowed, by design
        log.warning("could not kick the relayer task; the periodic run will pick the item up", exc_info=True)


def next_nonce(*, contract_name: str, kind: str, signer: str) -> int:
    """The contract's `nonces(signer)` plus the signer's items of `kind` still on their way to the chain:
    the nonce the signer's next signed action must carry (Directory actions, plan approvals)."""
    mined = int(client.call(contract_name, "nonces", signer))
    queued = OutboxItem.objects.filter(
        kind=kind,
        payload__signer=signer,
        status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.SENT],
    ).count()
    return mined + queued
