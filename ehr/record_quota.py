"""The per-actor quota on record creation: at most settings.RECORDS_PER_DAY records in any 24 hours.

Every record costs the relayer gas (its anchor), so one account must not be able to create records
without bound. The window slides: it counts the records the actor created (`Record.created_by`, over
the `record_creator_idx` index) in the 24 hours before now, and a refusal says when enough of them
leave the window for the request to fit. A bundle import counts each of its records. 0 turns the
quota off.

Two concurrent requests of one actor may both pass the check and overshoot by one request's worth;
the quota bounds cost, it is not a ledger, so no lock is taken for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import status

from access.models import User
from ehr.models import Record
from healthhash.errors import DomainError

WINDOW = timedelta(days=1)


class QuotaExceeded(DomainError):
    """429: creating these records would take the actor over RECORDS_PER_DAY; `frees_at` says when
    they would fit (None when the request alone is larger than the daily limit)."""

    code = "quota_exceeded"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, *, limit: int, frees_at: datetime | None) -> None:
        super().__init__(detail)
        self.limit = limit
        self.frees_at = frees_at


def require_record_quota(*, actor: User, adding: int) -> None:
    """Pass if `actor` may create `adding` more records now; else raise QuotaExceeded."""
    limit = settings.RECORDS_PER_DAY
    if limit <= 0 or adding <= 0:
        return
    if adding > limit:
        raise QuotaExceeded(
            f"{adding} records in one request are more than the limit of {limit} records a day; "
            "split the import.",
            limit=limit,
            frees_at=None,
        )
    since = timezone.now() - WINDOW
    recent = Record.objects.filter(created_by=actor, created_at__gt=since)
    used = recent.count()
    over = used + adding - limit
    if over <= 0:
        return
    # The request fits once the `over` oldest records of the window have left it.
    oldest = recent.order_by("created_at").values_list("created_at", flat=True)[over - 1]
    frees_at = oldest + WINDOW
    raise QuotaExceeded(
        f"You have created {used} records in the last 24 hours; the limit is {limit} a day. "
        f"{adding} more fit after {frees_at.isoformat(timespec='seconds')}.",
        limit=limit,
        frees_at=frees_at,
    )
