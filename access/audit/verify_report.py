"""What `verify_audit` finds: each break named exactly (which patient and seq, or which batch; what was
expected, what was found), the counts, the unanchored tail, and plain notes on what it could not check."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuditBreak:
    """One break. Kinds:

    chains: missing_entry | hash_mismatch | malformed_entry (canonical not stored as bytes, or not the
    canonical JSON) | column_mismatch (a copied, filterable column differs from the hashed entry) |
    head_mismatch | head_behind_anchor (the head row was wound back below the seq it anchored);
    anchors: leaf_mismatch (an anchored head differs from the entry the database holds) |
    anchored_head_lost (the database no longer has an anchored entry) | root_mismatch |
    anchor_missing (the database says anchored, the chain has no such root) | anchor_root_mismatch |
    anchored_batch_unknown (the chain holds a root for a batch the database does not know) |
    seq_maybe_reused (an entry written after such a root, at a seq the root may commit to) |
    indexed_anchor_not_on_chain (the indexed copy of an event the node does not have).
    An anchor break names the block and transaction of the root on chain when there is one.
    """

    kind: str
    patient: str | None
    seq: int | None
    expected: str
    found: str
    batch_id: str | None = None
    block: int | None = None
    tx_hash: str | None = None

    def __str__(self) -> str:
        where = f"patient {self.patient} seq {self.seq}" if self.patient else f"batch {self.batch_id}"
        if self.batch_id and self.patient:
            where += f" (batch {self.batch_id})"
        if self.block is not None:
            where += f" (anchored in block {self.block}, tx {self.tx_hash})"
        return f"{self.kind} at {where}: expected {self.expected}, found {self.found}"


@dataclass
class AuditReport:
    chains: int = 0
    entries: int = 0
    batches_checked: int = 0
    batches_pending: int = 0
    heads_anchored: int = 0
    # Entries no root on chain covers yet, and the creation time (ISO, UTC) and age of the oldest.
    unanchored_entries: int = 0
    unanchored_since: str | None = None
    unanchored_age_s: float | None = None
    # Whether the anchored roots were read from the node itself (False: only the indexed copy was).
    chain_read: bool = False
    elapsed_s: float = 0.0
    breaks: list[AuditBreak] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.breaks)} BREAK(S)"
        where = "read from the chain" if self.chain_read else "NOT read from the chain"
        return (
            f"{verdict}: {self.entries} entries in {self.chains} chains, "
            f"{self.batches_checked} anchored batches ({self.heads_anchored} heads; roots {where}), "
            f"{self.batches_pending} batches waiting for the chain; {self.unanchored_text()}; "
            f"{self.elapsed_s:.3f} s ({self.entries_per_s:,.0f} entries/s)"
        )

    def unanchored_text(self) -> str:
        if not self.unanchored_entries:
            return "every entry anchored"
        return (
            f"{self.unanchored_entries} entries not yet anchored (oldest {_age(self.unanchored_age_s)} old)"
        )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
