"""The restore half of `verify_audit`: anchored batches the chain holds and the database does not.

A database restored from an older backup has lost the batches anchored since, while the chain keeps their
roots. Each is a break (`anchored_batch_unknown`, naming batch, root, block and tx): the heads it commits
to can no longer be proven. Each is also kept as an AuditLostBatch row, as the indexer does, so the writer
skips the seqs it may hold from then on (access/audit/log.py). A write made after the restore but before
either kept the batch may already have reused such a seq: an entry of a patient the batch's filter
matches, at or below its highest seq, created after the batch's block (by more than CLOCK_MARGIN, for the
clocks of the database and the chain) is reported as `seq_maybe_reused`.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Min

from access.audit.anchoring import AnchoredRoot, remember_lost_batch
from access.audit.batch_ids import BatchIdSummary
from access.audit.batch_ids import decode as decode_batch_id
from access.audit.verify_report import AuditBreak, AuditReport
from access.models import AccessLogEntry, AuditLostBatch
from contracts import client

# A pre-backup entry is older than the lost batch itself; this much clock difference between the database
# and the chain's block times is tolerated before a younger-looking entry counts as written after the root.
CLOCK_MARGIN = dt.timedelta(seconds=60)


def check_lost_batches(report: AuditReport, unknown: list[AnchoredRoot], *, from_chain: bool) -> None:
    """Report each lost batch and any seq written after it that it may hold; keep the batches read from
    the chain as AuditLostBatch rows (the one write `verify_audit` makes, and an idempotent one)."""
    times = _block_times(report, unknown) if from_chain else _kept_times()
    for lost in unknown:
        summary = decode_batch_id(lost.batch_id)
        seqs = f" at seq {summary.max_seq} or below" if summary else ""
        report.breaks.append(
            AuditBreak(
                "anchored_batch_unknown",
                None,
                None,
                f"the {lost.head_count} heads{seqs} under root {lost.root} (block {lost.block_number})",
                "no such batch in the database",
                lost.batch_id,
                lost.block_number,
                lost.tx_hash,
            )
        )
        if from_chain:
            remember_lost_batch(lost, anchored_at=times.get(lost.batch_id))
        anchored_at = times.get(lost.batch_id)
        if summary is not None and anchored_at is not None:
            _check_reuse(report, lost, summary, anchored_at)
    if unknown:
        report.notes.append(
            f"The chain holds {len(unknown)} anchored batch(es) this database does not know (restored from "
            "an older backup?): the heads they commit to cannot be proven. Which patients they cover is "
            "unknown here; the writer skips the sequence numbers they may hold, and the skipped numbers "
            "show as missing entries."
        )


def kept_lost_batches() -> list[AnchoredRoot]:
    """The lost batches kept in the database (what is known of them when no node answers)."""
    return [
        AnchoredRoot(row.batch_id, row.root, row.head_count, row.block_number, row.tx_hash)
        for row in AuditLostBatch.objects.all()
    ]


def _kept_times() -> dict[str, dt.datetime]:
    rows = AuditLostBatch.objects.exclude(anchored_at=None).values_list("batch_id", "anchored_at")
    return {batch_id: anchored_at for batch_id, anchored_at in rows if anchored_at is not None}


def _block_times(report: AuditReport, unknown: list[AnchoredRoot]) -> dict[str, dt.datetime]:
    """Each lost root's block time, read from the node (one batched call)."""
    blocks = sorted({lost.block_number for lost in unknown})
    try:
        answers = client.rpc_batch([("eth_getBlockByNumber", [hex(number), False]) for number in blocks])
    except (client.ChainUnavailable, client.ChainRpcError) as exc:
        report.notes.append(f"Block times NOT read ({exc}): seqs reused after a restore were not looked for.")
        return {}
    at = {
        number: dt.datetime.fromtimestamp(int(str(block["timestamp"]), 0), tz=dt.UTC)
        for number, block in zip(blocks, answers, strict=True)
        if block
    }
    return {lost.batch_id: at[lost.block_number] for lost in unknown if lost.block_number in at}


def _check_reuse(
    report: AuditReport, lost: AnchoredRoot, summary: BatchIdSummary, anchored_at: dt.datetime
) -> None:
    """Entries written after the lost root, at seqs it may commit to (the writer did not know it yet)."""
    max_seq = summary.max_seq
    written_after = (
        AccessLogEntry.objects.filter(created_at__gt=anchored_at + CLOCK_MARGIN, seq__lte=max_seq)
        .values_list("patient_address")
        .annotate(first=Min("seq"), count=Count("id"))
        .order_by("patient_address")
    )
    for patient, first, count in written_after:
        if not summary.may_hold(patient):
            continue
        report.breaks.append(
            AuditBreak(
                "seq_maybe_reused",
                patient,
                first,
                f"no entry at seq {max_seq} or below written after the root of batch {lost.batch_id}",
                f"{count} entr{'y' if count == 1 else 'ies'} from seq {first} written after it: the lost "
                "root may commit to other entries at these seqs",
                lost.batch_id,
                lost.block_number,
                lost.tx_hash,
            )
        )
