"""Gas is deterministic, so the suite pins it: a contract change that costs gas fails here, and the per-item
bounds the relayer sizes its batches with must stay above what an item really costs.

Only the calldata differs between runs of `measure_gas`: it signs with fresh random keys and random ids,
and a zero byte of calldata costs 4 gas instead of 16 (EIP-2028); nothing else on these paths depends on
the values. So a single transaction costs its CEILING (no zero byte among its ~100 random bytes) less
12 gas per zero byte: at most a few (each byte is zero with p = 1/256: 0 to 3 seen in 52 runs, more than
8 has p < 1e-9). Figures averaged over a batch of 100 items move by a few gas (8 over 52 runs).
Figures measured on anvil with real receipts; the README's "Gas" table shows the same numbers.
"""

from __future__ import annotations

import pytest

from bench.gas_report import BATCH_SIZE, TARGETS, TX_BASE_GAS, measure_gas
from contracts.relayer import BATCH_BASE_GAS, GAS_HEADROOM, GAS_MARGIN
from contracts.relayer_kinds import KINDS, RelayKind
from tests.fixtures.chain import DeployedContracts

ZERO_BYTE_SAVING = 16 - 4
MAX_ZERO_BYTES = 8

# One transaction each: the gas with no zero byte in the random parts of its calldata.
CEILINGS = {
    "deploy_Directory": 1_239_211,
    "deploy_ConsentRegistry": 1_400_459,
    "deploy_Anchors": 769_426,
    "grantBySig_single": 61_582,
    "revokeBySig_single": 35_506,
    "grantBatch_1": 62_832,
    "revokeBatch_1": 36_274,
    "grant_direct": 56_362,
    "revoke_direct": 29_983,
    "anchorAuditRoot": 48_795,
    "anchorRecordRoot": 48_905,
    "anchorRecordRoot_1000": 48_917,
    "anchorRecordRoot_resend": 27_098,
}

# Per item of a batch of 100: the centre of 52 runs. A batch has ~10^4 random calldata bytes, ~40 of them
# zero (sd ~7), i.e. about 5 +- 1 gas per item: +-10 is more than 5 sd, and still catches a change of
# 10 gas per item (far less than any storage write or event costs).
PER_ITEM = {
    "grantBatch_per_item": 34_473,
    "grantBatch_marginal_item": 34_399,
    "revokeBatch_per_item": 14_395,
    "revokeBatch_marginal_item": 14_386,
    # One record root, whatever the batch size, divided by the records it covers (issue 13: <= 1,000).
    "anchorRecordRoot_per_record_100": 489,
    "anchorRecordRoot_per_record_1000": 48,
}
PER_ITEM_TOLERANCE = 10

# The figures of each relay kind's call: <prefix>_per_item, and for consents also <prefix>_1 (a one-item
# batch) and <prefix>_marginal_item (what one more item adds).
KIND_FIGURES = {
    ("ConsentRegistry", "grantBatch"): "grantBatch",
    ("ConsentRegistry", "revokeBatch"): "revokeBatch",
}

# ---------------------------------------------------------------- training (issue 14): TrainingRegistry
# bench.gas_report measures these with calldata free of zero bytes apart from the signatures (64 random bytes
# each), so each figure is its ceiling less 12 gas per zero byte of a signature. A re-sent update executes so
# little that EIP-7623's calldata floor (Prague) prices it, at 30 gas less per zero byte.
CEILINGS.update(
    {
        "deploy_TrainingRegistry": 1_714_914,
        "approvePlanBySig": 89_072,
        "approvePlanBySig_change": 54_884,
        "submitUpdateBySig_single": 68_504,
        "submitUpdateBatch_1": 69_642,
        "publishModelVersion": 51_335,
        "publishModelVersion_resend": 28_776,
    }
)
KIND_FIGURES[("TrainingRegistry", "submitUpdateBatch")] = "submitUpdateBatch"
UPDATE_RESEND_CEILING = 33_040
FLOOR_ZERO_BYTE_SAVING = 10 * (4 - 1)
UPDATE_ROUND_CEILING = 475_464  # submitUpdateBatch_10: ten updates, ten signatures (640 random bytes)
UPDATE_ROUND_MAX_ZERO_BYTES = 16  # 2.5 expected; more than 16 has p < 1e-8


@pytest.fixture(scope="module")
def figures(deployed_contracts: DeployedContracts) -> dict[str, int]:
    return measure_gas(deployed_contracts.w3, deployed_contracts.contracts)


@pytest.mark.parametrize("name", sorted(CEILINGS))
def test_single_transaction_costs_its_ceiling_less_only_zero_calldata_bytes(
    figures: dict[str, int], name: str
) -> None:
    below = CEILINGS[name] - figures[name]
    assert below >= 0, f"{name} costs {-below} gas more than {CEILINGS[name]:,}: update CEILINGS and README"
    assert below % ZERO_BYTE_SAVING == 0, f"{name} = {figures[name]:,}: not calldata alone, the code changed"
    assert below <= ZERO_BYTE_SAVING * MAX_ZERO_BYTES, f"{name} = {figures[name]:,}: cheaper, update CEILINGS"


@pytest.mark.parametrize("name", sorted(PER_ITEM))
def test_batched_item_costs_what_was_measured(figures: dict[str, int], name: str) -> None:
    assert abs(figures[name] - PER_ITEM[name]) <= PER_ITEM_TOLERANCE, f"{name} = {figures[name]:,}"


def test_resending_a_record_root_costs_exactly_the_write_less(figures: dict[str, int]) -> None:
    # The same calldata twice: the difference is the new root's storage slot and its event, exactly.
    assert figures["anchorRecordRoot"] - figures["anchorRecordRoot_resend"] == 21_807


def test_a_record_root_costs_the_same_whatever_the_batch_size(figures: dict[str, int]) -> None:
    # Only the count's calldata differs (1000 has one more non-zero byte than 100).
    difference = figures["anchorRecordRoot_1000"] - figures["anchorRecordRoot"]
    assert abs(difference) <= ZERO_BYTE_SAVING * MAX_ZERO_BYTES
    assert figures["anchorRecordRoot_per_record_1000"] < figures["anchorRecordRoot_per_record_100"] <= 1_000


def test_figures_meet_the_benchmark_targets(figures: dict[str, int]) -> None:
    assert {name: figures[name] for name in TARGETS if figures[name] > TARGETS[name]} == {}


def _sized_kinds() -> list[RelayKind]:
    return [kind for kind in KINDS.values() if kind.gas_per_item is not None]


def test_every_kind_sized_by_a_per_item_bound_has_its_cost_measured() -> None:
    assert _sized_kinds()
    unmeasured = [k.name for k in _sized_kinds() if (k.contract_name, k.function_name) not in KIND_FIGURES]
    assert unmeasured == [], "add the kind's figures to bench/gas_report.py and KIND_FIGURES"


@pytest.mark.parametrize("kind", _sized_kinds(), ids=lambda kind: kind.name)
def test_relayer_per_item_bound_covers_the_measured_cost_without_its_headroom(
    figures: dict[str, int], kind: RelayKind
) -> None:
    # The relayer sends BATCH_BASE_GAS + gas_per_item * n (then * GAS_HEADROOM + GAS_MARGIN for state that
    # changes between its dry run and mining). The bound alone must cover the real cost, so the headroom is
    # never spent on a known cost: for the worst item (one alone, all its storage cold) and any batch size.
    assert kind.gas_per_item is not None
    prefix = KIND_FIGURES[(kind.contract_name, kind.function_name)]
    per_item, single = figures[f"{prefix}_per_item"], figures.get(f"{prefix}_1")
    marginal = figures.get(f"{prefix}_marginal_item")
    worst_item = max(per_item, single - TX_BASE_GAS if single else 0)
    assert kind.gas_per_item >= worst_item
    for items in (1, BATCH_SIZE, kind.max_batch):
        if single and marginal:
            cost = single + marginal * (items - 1)
        else:
            cost = TX_BASE_GAS + per_item * items
        assert BATCH_BASE_GAS + kind.gas_per_item * items >= cost, f"{kind.name}: {items} items"
    assert GAS_HEADROOM > 1 and GAS_MARGIN > 0


# ---------------------------------------------------------------- training (issue 14)


def test_a_round_of_ten_updates_costs_its_ceiling_less_only_zero_signature_bytes(
    figures: dict[str, int],
) -> None:
    below = UPDATE_ROUND_CEILING - figures["submitUpdateBatch_10"]
    assert below >= 0, f"a round of updates costs {-below} gas more: update UPDATE_ROUND_CEILING and README"
    assert below % ZERO_BYTE_SAVING == 0, f"submitUpdateBatch_10 = {figures['submitUpdateBatch_10']:,}"
    assert below <= ZERO_BYTE_SAVING * UPDATE_ROUND_MAX_ZERO_BYTES, "cheaper: update UPDATE_ROUND_CEILING"


def test_a_resent_update_writes_nothing_and_costs_its_calldata_floor(figures: dict[str, int]) -> None:
    below = UPDATE_RESEND_CEILING - figures["submitUpdateBySig_resend"]
    assert 0 <= below <= FLOOR_ZERO_BYTE_SAVING * MAX_ZERO_BYTES and below % FLOOR_ZERO_BYTE_SAVING == 0
    # No storage write, no Directory call, no signature check, no event: at least a new slot's 22,100 less.
    assert figures["submitUpdateBySig_single"] - figures["submitUpdateBySig_resend"] > 22_100


def test_updates_of_a_round_and_a_model_version_meet_the_issue_14_targets(figures: dict[str, int]) -> None:
    # gas_update: one update's share of a ten-hospital round's transaction, its base included.
    assert figures["gas_update"] == -(-figures["submitUpdateBatch_10"] // 10) <= 60_000
    assert figures["gas_model_version"] == figures["publishModelVersion"] <= 60_000
    # Two updates sent together already fit; one alone does not (see the report: batching is the way).
    assert figures["submitUpdateBatch_1"] + figures["submitUpdateBatch_marginal_item"] <= 2 * 60_000
