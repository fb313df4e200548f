"""The relayer's lease: one relayer run at a time, across processes and machines, on the RelayerState row.

The lease is short (`settings.RELAYER_LEASE_S`, 10 s by default) so that a relayer killed with SIGKILL
blocks relaying for seconds, not minutes. A run that works longer renews it between its steps
(`heartbeat()`), and the transaction that persists a signed transaction proves it still holds the lease
(`fence()`), so a run that lost its lease never signs again.

Why renewal between steps and not a heartbeat thread: a thread renews while the process lives, not while
it makes progress, so a run stuck in a call would keep the lease for ever; and a process stopped (SIGSTOP,
a VM pause) mid-broadcast stops its thread too, lets the lease lapse, and on waking must not go on writing
as if it still held it. Only a check in the same database transaction as the write (the fence) is safe
against that; the heartbeat between steps keeps a long, progressing run's lease alive.

The owner is "host:pid:token", so a log line or the row names the process that holds the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from contracts.models import RelayerState
from healthhash.errors import Conflict

log = logging.getLogger(__name__)

HELD_LOG_EVERY_S = 30.0  # "held by X" is logged once per holder process in this window, not every poll


class RelayerBusy(Conflict):
    code = "relayer_busy"


class LeaseLost(RelayerBusy):
    """Another process took the lease over after ours lapsed: this run must stop writing."""

    code = "relayer_lease_lost"


@dataclass
class _Held:
    owner: str
    renewed_at: float  # time.monotonic() of the last successful renewal


# The lease this run holds (a ContextVar, not a global: two runs in one process never share it).
_held: ContextVar[_Held | None] = ContextVar("relayer_lease_held", default=None)
_held_logged: dict[str, float] = {}  # holder process -> monotonic time its lease was last logged


def new_owner() -> str:
    """A lease owner name that says who holds it: host, process id and a random token (<= 64 chars)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_seconds() -> float:
    return float(settings.RELAYER_LEASE_S)


def acquire(owner: str) -> bool:
    """Take the lease if it is free, lapsed or already `owner`'s; logs who holds it when it is not."""
    state, _ = RelayerState.objects.get_or_create(pk=1)
    now = timezone.now()
    taken = (
        RelayerState.objects.filter(pk=1)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds()))
        == 1
    )
    if not taken:
        _log_held()
    elif state.lease_owner and state.lease_owner != owner and state.lease_until is not None:
        # Released leases are cleared; a lapsed one means its holder died or stalled mid-run.
        log.warning(
            "relayer lease of %s lapsed at %s (%.1f s ago) without release; %s takes over",
            state.lease_owner,
            state.lease_until.isoformat(timespec="milliseconds"),
            (now - state.lease_until).total_seconds(),
            owner,
        )
    return taken


def release(owner: str) -> None:
    """Give the lease back (a no-op if another process holds it now)."""
    RelayerState.objects.filter(pk=1, lease_owner=owner).update(lease_owner="", lease_until=None)


def _log_held() -> None:
    row = RelayerState.objects.filter(pk=1).values_list("lease_owner", "lease_until").first()
    holder, until = row if row is not None else ("", None)
    if not holder or until is None:
        return  # released in between
    process = holder.rsplit(":", 1)[0]
    last = _held_logged.get(process)
    if last is not None and time.monotonic() - last < HELD_LOG_EVERY_S:
        return
    _held_logged[process] = time.monotonic()
    log.info("relayer lease held by %s until %s (%s); waiting", holder, _iso(until), _from_now(until))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _from_now(moment: datetime) -> str:
    seconds = (moment - timezone.now()).total_seconds()
    return f"in {seconds:.1f} s" if seconds >= 0 else f"lapsed {-seconds:.1f} s ago"


@contextmanager
def holding(owner: str) -> Iterator[None]:
    """Marks the code inside as working under `owner`'s lease, for heartbeat() and fence()."""
    token = _held.set(_Held(owner=owner, renewed_at=time.monotonic()))
    try:
        yield
    finally:
        _held.reset(token)


def heartbeat() -> None:
    """Between the steps of a long run: renew the lease once a third of it has passed.

    Raises LeaseLost if another process holds it now. Outside a lease (no `holding`) it does nothing.
    """
    held = _held.get()
    if held is not None and time.monotonic() - held.renewed_at >= lease_seconds() / 3:
        _renew(held)


def fence() -> None:
    """Inside the database transaction that persists signed work: prove (and renew) the lease.

    Raises LeaseLost (rolling that transaction back) if another process took it over, and RuntimeError
    if called outside any lease, which would be a bug: signing is only ever done under the lease.
    """
    held = _held.get()
    if held is None:
        raise RuntimeError("a relayer transaction is being signed outside the relayer lease")
    _renew(held)


def _renew(held: _Held) -> None:
    started = time.monotonic()
    until = timezone.now() + timedelta(seconds=lease_seconds())
    if RelayerState.objects.filter(pk=1, lease_owner=held.owner).update(lease_until=until) != 1:
        holder = RelayerState.objects.filter(pk=1).values_list("lease_owner", flat=True).first()
        raise LeaseLost(f"the relayer lease of {held.owner} passed to {holder or 'nobody'}")
    held.renewed_at = started


@contextmanager
def relayer_lease(*, wait_s: float = 30.0) -> Iterator[None]:
    """Hold the relayer's lease (e.g. to deploy with the relayer key without racing its nonces).

    The caller renews it with heartbeat() if it works longer than a third of RELAYER_LEASE_S.
    """
    owner = new_owner()
    deadline = time.monotonic() + wait_s
    while not acquire(owner):
        if time.monotonic() > deadline:
            raise RelayerBusy("another relayer run holds the lease")
        time.sleep(0.2)
    try:
        with holding(owner):
            yield
    finally:
        release(owner)
