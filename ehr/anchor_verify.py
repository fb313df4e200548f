"""`verify_records`: every anchored record batch checked against the root the chain holds NOW (an eth_call of
`recordRootOf(batchId)` per batch, not the indexed copy), and the records not anchored yet reported with
their age. Kept in ehr (access may not import ehr): EhrConfig.ready() registers `companion_check` so
`verify_audit` runs it too; the leaf and tree encoding are ehr.anchoring's.

Per batch: the chain's root must equal the root recomputed from the batch's records as the database holds
them now (id, patient, digest, in position order), the count must match, and each record's stored proof
must lead to that root; a record whose proof fails is named (its digest, id or patient was changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import client
from ehr import anchoring
from ehr.models import Record, RecordAnchorBatch, RecordBatchStatus


@dataclass
class RecordsReport:
    batches_checked: int = 0
    records_checked: int = 0
    problems: list[str] = field(default_factory=list)
    backlog: anchoring.Backlog | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def unanchored_line(self) -> str:
        backlog = self.backlog
        if backlog is None or not backlog.total:
            return "every record is anchored"
        age = backlog.oldest_age_s() or 0.0
        return (
            f"{backlog.total} records not yet anchored ({backlog.unbatched} not in a batch, "
            f"{backlog.waiting} in a batch waiting for the chain); the oldest is {_age(age)} old"
        )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def chain_root_of(batch_id: str) -> str:
    root = client.call("Anchors", "recordRootOf", bytes.fromhex(batch_id.removeprefix("0x")))
    return "0x" + bytes(root).hex()


def verify_batch(batch: RecordAnchorBatch) -> tuple[int, list[str]]:
    """(records checked, problems) for one anchored batch, against the root read from the chain."""
    name = f"batch {batch.batch_id}"
    on_chain = chain_root_of(batch.batch_id)
    if on_chain == "0x" + "00" * 32:
        return 0, [f"{name}: the chain holds no root for it (another chain or deployment?)"]
    members = list(
        Record.objects.filter(anchor_batch=batch)
        .order_by("anchor_position")
        .only("id", "patient_address", "digest", "anchor_position", "anchor_proof")
    )
    problems = []
    if len(members) != batch.record_count:
        problems.append(f"{name}: {len(members)} records in the database, {batch.record_count} anchored")
    if [r.anchor_position for r in members] != list(range(len(members))):
        problems.append(f"{name}: record positions are not 0..{len(members) - 1}")
    if members:
        recomputed, _ = anchoring.merkle_root_and_proofs([anchoring.record_leaf(r) for r in members])
        if "0x" + recomputed.hex() != on_chain:
            problems.append(f"{name}: the records' root differs from the root on chain {on_chain}")
    problems += [
        f"record {r.id}: not included in the root on chain of {name}"
        for r in members
        if not anchoring.proves_inclusion(r, on_chain)
    ]
    return len(members), problems


def verify_records() -> RecordsReport:
    report = RecordsReport()
    for batch in RecordAnchorBatch.objects.filter(status=RecordBatchStatus.ANCHORED).iterator():
        checked, problems = verify_batch(batch)
        report.batches_checked += 1
        report.records_checked += checked
        report.problems += problems
    report.backlog = anchoring.anchor_backlog()
    return report


def companion_check() -> tuple[bool, list[str]]:
    """`verify_records` as a line-per-finding check for `verify_audit` (access.audit.companions). With no
    node the record roots cannot be read from the chain: that is a failure, not an OK from the database."""
    try:
        report = verify_records()
    except client.ChainUnavailable as exc:
        return False, [f"record roots NOT checked: {exc.detail}"]
    summary = (
        f"{report.records_checked} records in {report.batches_checked} anchored batches checked against "
        f"the chain: {'OK' if report.ok else f'{len(report.problems)} PROBLEMS'}"
    )
    return report.ok, [*report.problems, summary, report.unanchored_line()]
