"""Thin Celery tasks over the relayer and the indexer (periodic runs are in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from contracts import chain_identity, client, indexer, relayer


@shared_task(name="contracts.tasks.relay_outbox", ignore_result=True)
def relay_outbox() -> dict[str, Any]:
    report = relayer.relay_once()
    return {k: v for k, v in asdict(report).items() if k not in ("tx_timings", "resent")}


@shared_task(name="contracts.tasks.sync_chain", ignore_result=True)
def sync_chain() -> dict[str, Any]:
    try:
        return asdict(indexer.sync_chain())
    except chain_identity.WrongChain as exc:  # logged by the check itself, once per re-check
        return {"wrong_chain": exc.detail}
    except client.ChainUnavailable as exc:
        return {"unavailable": str(exc)}
