"""A dataset release holds exactly the records THE consent rule lets the hospital's account use for
TRAINING at the pinned block, opens only with the hospital's key, and puts one access-log entry per
patient per (job, hospital) into the patients' logs. Real stack: anvil, SQLite, the local block store."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter

import pytest

from access.identity.keys import hospital_public_key
from access.models import AccessAction, AccessLogEntry, Hospital, LegalBasis
from contracts.drain import drain_outbox
from ehr import store
from federated.release import BlockNotIndexed, HospitalInactive, release_dataset
from federated.release_format import ReleaseBroken, open_records
from healthhash import sealing
from tests.federated.release_setup import WdbcWorld, _test_kek, world_fixture  # noqa: F401  (fixtures)


def released_ids(world: WdbcWorld, pinned_block: int, job_key: str = "job-1") -> set[str]:
    release = release_dataset(hospital=world.hospital, job_key=job_key, pinned_block=pinned_block)
    opened = open_records(
        release.sealed_bytes,
        private_key=world.hospital_key,
        job_key=job_key,
        hospital_account=world.hospital.account_address,
        pinned_block=pinned_block,
    )
    assert release.record_count == len(opened)
    return {r.record_id for r in opened}


def release_entries(world: WdbcWorld) -> list[AccessLogEntry]:
    addresses = [world.address(name) for name in world.patients]
    return list(
        AccessLogEntry.objects.filter(patient_address__in=addresses, action=AccessAction.RELEASE).order_by(
            "patient_address", "seq"
        )
    )


def test_release_holds_exactly_the_training_consented_records_at_each_pinned_block(world: WdbcWorld) -> None:
    first_grant = world.consents["p0"].granted_block
    assert first_grant is not None
    before_grants = first_grant - 1
    granted = world.head()
    world.revoke("p1")
    revoked = world.head()

    assert released_ids(world, before_grants) == set()
    # p2 consented to laboratory records only; p3 holds a TREATMENT consent, which is no training consent.
    expected = world.record_ids("p0", "p1") | world.record_ids("p2", category="laboratory")
    assert len(expected) == 31 + 31 + 30
    assert released_ids(world, granted) == expected
    assert released_ids(world, revoked) == expected - world.record_ids("p1")


def test_each_released_key_opens_its_stored_record_and_the_digest_is_of_the_stored_bytes(
    world: WdbcWorld,
) -> None:
    pinned = world.head()
    release = release_dataset(hospital=world.hospital, job_key="job-1", pinned_block=pinned)
    opened = open_records(
        release.sealed_bytes,
        private_key=world.hospital_key,
        job_key="job-1",
        hospital_account=world.hospital.account_address,
        pinned_block=pinned,
    )
    assert release.patient_count == 3
    kinds: Counter[str] = Counter()
    for record in opened:
        sealed_bytes = store.cat(record.cid)
        plaintext = sealing.open_sealed(
            sealed_bytes,
            data_key=record.data_key,
            aad=sealing.record_content_aad(record.record_id, record.patient_address),
        )
        kinds[json.loads(plaintext)["resourceType"]] += 1
        assert record.digest == hashlib.sha256(sealed_bytes).hexdigest()
    assert kinds == {"Observation": 90, "Condition": 2}


def test_release_opens_only_with_the_hospitals_key_for_its_job_and_block(world: WdbcWorld) -> None:
    pinned = world.head()
    release = release_dataset(hospital=world.hospital, job_key="job-1", pinned_block=pinned)
    account = world.hospital.account_address
    other_keys = [secrets.token_bytes(32), bytes(world.personas.chain.accounts.other_hospital_account.key)]
    for key in other_keys:
        with pytest.raises(ReleaseBroken):
            open_records(
                release.sealed_bytes,
                private_key=key,
                job_key="job-1",
                hospital_account=account,
                pinned_block=pinned,
            )
    for job_key, block in (("job-2", pinned), ("job-1", pinned - 1)):
        with pytest.raises(ReleaseBroken):
            open_records(
                release.sealed_bytes,
                private_key=world.hospital_key,
                job_key=job_key,
                hospital_account=account,
                pinned_block=block,
            )
    # Nothing in clear names a patient or a key.
    assert world.address("p0").lower().encode() not in release.sealed_bytes.lower()


def test_one_access_log_entry_per_patient_per_job_and_hospital(world: WdbcWorld) -> None:
    first = world.head()
    released_ids(world, first)
    released_ids(world, first)  # the same job again: no new entries
    entries = release_entries(world)
    assert sorted(e.patient_address for e in entries) == sorted(world.address(n) for n in ("p0", "p1", "p2"))
    by_patient = {e.patient_address: e for e in entries}
    p0 = by_patient[world.address("p0")]
    assert p0.purpose == "TRAINING" and p0.outcome == "allowed"
    assert p0.actor_id is None and p0.actor_address == world.hospital.account_address
    consent = world.consents["p0"]
    assert p0.legal_basis == LegalBasis.consent(consent.id, consent.granted_block)
    assert p0.detail == {
        "job": "job-1",
        "hospital": world.hospital.slug,
        "records": 31,
        "pinned_block": first,
    }
    assert (by_patient[world.address("p2")].detail or {})["records"] == 30

    # A later block with a newly consented patient logs that patient only.
    world.consents["p3"] = world.grant_training("p3")
    released_ids(world, world.head())
    entries = release_entries(world)
    assert len(entries) == 4
    later = [e.patient_address for e in entries if (e.detail or {})["pinned_block"] != first]
    assert later == [world.address("p3")]

    # Another job is another entry for each patient.
    released_ids(world, world.head(), job_key="job-2")
    assert len(release_entries(world)) == 8


def test_release_refuses_an_inactive_hospital_and_a_block_the_indexer_has_not_reached(
    world: WdbcWorld,
) -> None:
    with pytest.raises(BlockNotIndexed):
        release_dataset(hospital=world.hospital, job_key="job-1", pinned_block=world.head() + 100)
    Hospital.objects.filter(pk=world.hospital.pk).update(active=False)
    world.hospital.refresh_from_db()
    with pytest.raises(HospitalInactive):
        release_dataset(hospital=world.hospital, job_key="job-1", pinned_block=world.head())
    assert release_entries(world) == []


def test_hospital_public_key_is_derived_once_for_a_hospital_keyed_before_the_column(world: WdbcWorld) -> None:
    expected = sealing.public_key_of(world.hospital_key)
    assert world.hospital.account_public_key == expected.hex()
    Hospital.objects.filter(pk=world.hospital.pk).update(account_public_key="")
    hospital = Hospital.objects.get(pk=world.hospital.pk)
    assert hospital_public_key(hospital=hospital) == expected
    assert Hospital.objects.get(pk=hospital.pk).account_public_key == expected.hex()
    drain_outbox()  # nothing was queued for the chain by deriving it
