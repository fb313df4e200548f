"""The outbox: a service that needs a chain write adds an item INSIDE its own transaction.atomic, so the
item commits (or rolls back) with the service's rows; the relayer is kicked only after commit.

Items are typed (`contracts.relayer_kinds`: ConsentGrantItem, RecordRootItem, ...): each knows its
kind name, the payload stored for the relayer and its idempotency key.

Every item ends `confirmed` or `failed` (with error_code and error_detail). Apps whose rows follow their
items register listeners per kind (`register_listener`, from AppConfig.ready(), as indexer handlers
are): told, inside the transaction that changes the items, when items fail and when failed items are
queued again (`requeue_failed`: a retry).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts import chain_identity, client
from contracts.models import OutboxItem
from contracts.relayer_kinds import BadItem, ConsentRevokeKind, RelayItem, get_kind
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


# Writes queued even while the node is not the deployments' chain. A revocation is the patient's way to cut
# access, and the consent rule denies as soon as one is requested (access/consent/rule.py): refusing it
# would leave the doctor reading on an index nobody can change. Queued, it waits like a write made while
# the node is down; the relayer sends nothing until the right chain answers (contracts/relayer.py).
PROTECTIVE_KINDS = frozenset({ConsentRevokeKind.name})


def enqueue(item: RelayItem, *, idempotency_key: str | None = None) -> OutboxItem:
    """Queue one chain write; an existing idempotency key returns the existing item (no duplicate),
    except a FAILED one, which is queued again with this payload (a retry: e.g. a fresh signature).

    The key is the item's own unless `idempotency_key` is given (a test that queues a replay on purpose).
    Raises WrongChain when the node answers but is not the chain the contracts were deployed on, except
    for a revocation (see PROTECTIVE_KINDS).
    """
    payload = _checked_payload(item)
    if item.kind not in PROTECTIVE_KINDS:
        chain_identity.require_deployed_chain_if_reachable()
    key = idempotency_key or item.idempotency_key
    existing = OutboxItem.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.status == OutboxItem.Status.FAILED and requeue_failed([existing.pk], payload=payload):
            existing.refresh_from_db()
            transaction.on_commit(kick_relayer)
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
    if rows:
        chain_identity.require_deployed_chain_if_reachable()
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

        # No publish retries: with the broker down, Celery's default policy (3 tries) held each grant's
        # request 0.7 s for a kick whose loss costs nothing (the relayer process and beat relay anyway).
        relay_outbox.apply_async(retry=False)
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


ItemListener = Callable[[list[OutboxItem]], None]
_on_failed: dict[str, list[ItemListener]] = {}
_on_requeued: dict[str, list[ItemListener]] = {}


def register_listener(kind: str, *, on_failed: ItemListener, on_requeued: ItemListener) -> None:
    """Call `on_failed(items)` when items of `kind` end failed, and `on_requeued(items)` when failed
    items are queued again; both inside the transaction that changes the items."""
    if on_failed not in _on_failed.setdefault(kind, []):
        _on_failed[kind].append(on_failed)
    if on_requeued not in _on_requeued.setdefault(kind, []):
        _on_requeued[kind].append(on_requeued)


def _tell(listeners: dict[str, list[ItemListener]], ids: list[int]) -> None:
    by_kind: dict[str, list[OutboxItem]] = {}
    for row in OutboxItem.objects.filter(pk__in=ids).order_by("id"):
        by_kind.setdefault(row.kind, []).append(row)
    for kind, rows in by_kind.items():
        for listener in listeners.get(kind, []):
            listener(rows)


def items_failed(ids: list[int]) -> None:
    """Tell the listeners that these items are now failed (the relayer calls it in its transaction)."""
    if ids:
        _tell(_on_failed, ids)


def requeue_failed(ids: list[int], *, payload: dict[str, Any] | None = None) -> int:
    """Queue failed items again (with a new payload if given, e.g. a fresh signature); returns how many.

    For an operator, after the cause is gone (the node was the wrong chain, the relayer ran out of
    funds): `manage.py relay --retry-failed`. Listeners hear of it in the same transaction.
    """
    changes: dict[str, Any] = {
        "status": OutboxItem.Status.PENDING,
        "chain_tx": None,
        "error_code": "",
        "error_detail": "",
        "confirmed_block": None,
        "updated_at": timezone.now(),
    }
    if payload is not None:
        changes["payload"] = payload
    with transaction.atomic():
        failed = list(
            OutboxItem.objects.filter(pk__in=ids, status=OutboxItem.Status.FAILED).values_list(
                "pk", flat=True
            )
        )
        count = OutboxItem.objects.filter(pk__in=failed, status=OutboxItem.Status.FAILED).update(**changes)
        if count:
            _tell(_on_requeued, failed)
    return count
