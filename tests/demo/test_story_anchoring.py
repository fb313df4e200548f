"""The demo's anchoring step: records batched into Merkle roots, relayed, and reported with their gas."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.drain import drain_outbox
from demo.story import _anchored_records_line
from ehr import records
from ehr.anchoring import anchor_all_records
from tests.ehr.conftest import observation

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_anchoring_line_counts_records_roots_and_gas_per_record(personas: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": observation()}] * 5}
    records.import_bundle(actor=personas.alice, patient=personas.alice, bundle=bundle)
    anchor_all_records(max_records=3)
    drain_outbox()
    line = _anchored_records_line()
    assert line.startswith("5 records anchored on chain as 2 Merkle roots, ")
    assert line.endswith(" gas per record")
