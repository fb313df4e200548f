"""`ipfs_push --to URL` copies every sealed record blob to a Kubo node and verifies the CIDs.

Against the recorded-protocol Kubo fake (tests/ehr/kubo_fake.py): no Kubo binary installs here; the
fake's CIDs come from the independent JS importer."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from ehr import records
from tests.ehr.conftest import observation
from tests.ehr.kubo_fake import KuboFake

pytestmark = pytest.mark.django_db(transaction=True)


def test_push_copies_every_record_blob_and_a_second_push_finds_them(personas: Any) -> None:
    made = [
        records.create_record(actor=personas.alice, patient=personas.alice, resource=observation(value=v))
        for v in (1.0, 2.0)
    ]
    with KuboFake() as node:
        out = StringIO()
        call_command("ipfs_push", to=node.api_url, stdout=out)
        assert "pushed 2, already there 0, failed 0" in out.getvalue()
        again = StringIO()
        call_command("ipfs_push", to=node.api_url, stdout=again)
        assert "pushed 0, already there 2" in again.getvalue()
    assert len({r.cid for r in made}) == 2
