"""ConsentRegistry on real anvil: signed grants and revokes, replay, domains, batches, scopes, expiry."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts.typed_data import consent_id, hospital_id, scope_hash
from tests.contracts.consent_signing import (
    ZERO32,
    ZERO_ADDRESS,
    chain_now,
    reverts_with,
    selector,
    signed_grant,
    signed_revoke,
)
from tests.fixtures.chain import ChainClock, DeployedContracts, transact

TREATMENT, TRAINING = 0, 1


@pytest.fixture
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


@pytest.fixture
def doctor(chain: DeployedContracts) -> str:
    return chain.accounts.doctors[0].address


def allowed(
    chain: DeployedContracts,
    patient: str,
    grantee: str,
    *,
    record: bytes = ZERO32,
    category: bytes = ZERO32,
    purpose: int = TREATMENT,
) -> bool:
    return chain.registry.functions.isAllowed(patient, grantee, record, category, purpose).call()


def consent_state(
    chain: DeployedContracts, patient: str, grantee: str, scope: str = "chart", purpose: int = TREATMENT
) -> tuple[bool, int, int]:
    cid = consent_id(patient, grantee, scope_hash(scope), purpose)
    return tuple(chain.registry.functions.consentOf(cid).call())


def relay(chain: DeployedContracts, fn: ContractFunction) -> TxReceipt:
    return transact(fn, chain.accounts.relayer.address)


def test_signed_grant_allows_access_and_emits_consent_granted(chain, doctor):
    patient = Account.create()
    assert not allowed(chain, patient.address, doctor)
    receipt = relay(chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, doctor)))
    assert allowed(chain, patient.address, doctor)
    assert consent_state(chain, patient.address, doctor) == (True, 0, 1)
    (event,) = chain.registry.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)
    assert event.args.consentId == consent_id(patient.address, doctor, scope_hash("chart"), TREATMENT)
    assert (event.args.patient, event.args.grantee, event.args.version) == (patient.address, doctor, 0)
    assert event.args.scopeHash == chain.registry.functions.CHART_SCOPE().call()


def test_python_consent_id_matches_contract(chain, doctor):
    patient = Account.create().address
    scope = scope_hash("category:laboratory")
    onchain = chain.registry.functions.consentIdOf(patient, doctor, scope, TRAINING).call()
    assert onchain == consent_id(patient, doctor, scope, TRAINING)


def test_same_signature_submitted_twice_is_rejected_as_bad_version(chain, doctor):
    patient = Account.create()
    grant = signed_grant(chain.registry, patient, doctor)
    relay(chain, chain.registry.functions.grantBySig(grant))
    with reverts_with("BadVersion()"):
        relay(chain, chain.registry.functions.grantBySig(grant))


def test_old_grant_cannot_be_replayed_after_revoke(chain, doctor):
    patient = Account.create()
    grant = signed_grant(chain.registry, patient, doctor)
    relay(chain, chain.registry.functions.grantBySig(grant))
    relay(
        chain, chain.registry.functions.revokeBySig(signed_revoke(chain.registry, patient, doctor, version=1))
    )
    assert not allowed(chain, patient.address, doctor)
    with reverts_with("BadVersion()"):
        relay(chain, chain.registry.functions.grantBySig(grant))
    assert consent_state(chain, patient.address, doctor) == (False, 0, 2)


def test_grant_past_its_deadline_is_rejected(chain, doctor):
    patient = Account.create()
    grant = signed_grant(chain.registry, patient, doctor, deadline=chain_now(chain.w3) - 1)
    with reverts_with("DeadlineExpired()"):
        relay(chain, chain.registry.functions.grantBySig(grant))


def test_grant_signed_by_someone_else_is_rejected(chain, doctor):
    patient, mallory = Account.create(), Account.create()
    with reverts_with("BadSignature()"):
        relay(
            chain,
            chain.registry.functions.grantBySig(
                signed_grant(chain.registry, patient, doctor, signer=mallory)
            ),
        )


def test_grant_signed_for_another_chain_id_is_rejected(chain, doctor):
    patient = Account.create()
    grant = signed_grant(chain.registry, patient, doctor, chain_id=chain.chain_id + 1)
    with reverts_with("BadSignature()"):
        relay(chain, chain.registry.functions.grantBySig(grant))


def test_grant_signed_for_another_contract_is_rejected(chain, doctor):
    patient = Account.create()
    grant = signed_grant(chain.registry, patient, doctor, verifying_contract=chain.directory.address)
    with reverts_with("BadSignature()"):
        relay(chain, chain.registry.functions.grantBySig(grant))


def test_grant_to_unregistered_grantee_is_rejected(chain):
    patient, stranger = Account.create(), Account.create().address
    with reverts_with("GranteeNotRegistered()"):
        relay(chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, stranger)))


def test_grant_to_deactivated_doctor_is_rejected(chain):
    admin, hid = chain.accounts.hospital_admin.address, chain.hospital_id
    leaving = Account.create().address
    transact(chain.directory.functions.execute((2, hid, leaving, ZERO_ADDRESS, 0, 0)), admin)
    transact(chain.directory.functions.execute((3, hid, leaving, ZERO_ADDRESS, 0, 0)), admin)
    with reverts_with("GranteeNotRegistered()"):
        relay(
            chain,
            chain.registry.functions.grantBySig(signed_grant(chain.registry, Account.create(), leaving)),
        )


def test_grant_to_doctor_or_account_of_deactivated_hospital_is_rejected(chain):
    consortium, admin = chain.accounts.consortium_admin.address, chain.accounts.hospital_admin.address
    hid = hospital_id("closing-" + Account.create().address)
    account, its_doctor = Account.create().address, Account.create().address
    transact(chain.directory.functions.execute((0, hid, account, admin, 0, 0)), consortium)
    transact(chain.directory.functions.execute((2, hid, its_doctor, ZERO_ADDRESS, 0, 0)), admin)
    relay(
        chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, Account.create(), its_doctor))
    )
    transact(chain.directory.functions.execute((1, hid, ZERO_ADDRESS, ZERO_ADDRESS, 0, 0)), consortium)
    for grantee in (its_doctor, account):
        with reverts_with("GranteeNotRegistered()"):
            relay(
                chain,
                chain.registry.functions.grantBySig(
                    signed_grant(chain.registry, Account.create(), grantee, purpose=TRAINING)
                ),
            )


def test_purpose_above_max_is_rejected(chain, doctor):
    with reverts_with("BadPurpose()"):
        relay(
            chain,
            chain.registry.functions.grantBySig(
                signed_grant(chain.registry, Account.create(), doctor, purpose=2)
            ),
        )


def test_expiry_in_the_past_is_rejected(chain, doctor):
    grant = signed_grant(chain.registry, Account.create(), doctor, expires_at=chain_now(chain.w3))
    with reverts_with("BadExpiry()"):
        relay(chain, chain.registry.functions.grantBySig(grant))


def test_consent_stops_allowing_access_once_expired(chain, doctor, chain_clock: ChainClock):
    patient = Account.create()
    expires_at = chain_now(chain.w3) + 100
    relay(
        chain,
        chain.registry.functions.grantBySig(
            signed_grant(chain.registry, patient, doctor, expires_at=expires_at)
        ),
    )
    assert allowed(chain, patient.address, doctor)
    chain_clock.advance(101)
    assert not allowed(chain, patient.address, doctor)
    assert consent_state(chain, patient.address, doctor) == (True, expires_at, 1)


def test_regrant_of_active_consent_updates_expiry_with_new_version(chain, doctor):
    patient = Account.create()
    first_expiry = chain_now(chain.w3) + 1000
    relay(
        chain,
        chain.registry.functions.grantBySig(
            signed_grant(chain.registry, patient, doctor, expires_at=first_expiry)
        ),
    )
    relay(
        chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, doctor, version=1))
    )
    assert consent_state(chain, patient.address, doctor) == (True, 0, 2)


def test_revoke_of_consent_never_granted_is_not_active(chain, doctor):
    patient = Account.create()
    with reverts_with("NotActive()"):
        relay(
            chain,
            chain.registry.functions.revokeBySig(signed_revoke(chain.registry, patient, doctor, version=0)),
        )


def test_revoke_signed_by_someone_else_is_rejected(chain, doctor):
    patient = Account.create()
    relay(chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, doctor)))
    forged = signed_revoke(chain.registry, patient, doctor, signer=Account.create())
    with reverts_with("BadSignature()"):
        relay(chain, chain.registry.functions.revokeBySig(forged))
    assert allowed(chain, patient.address, doctor)


def test_patient_with_ether_grants_and_revokes_directly(chain, doctor):
    patient = chain.w3.eth.accounts[9]
    scope = scope_hash("record:" + Account.create().address)
    receipt = transact(chain.registry.functions.grant(doctor, scope, TREATMENT, 0), patient)
    assert (
        chain.registry.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)[0].args.version == 0
    )
    assert allowed(chain, patient, doctor, record=scope)
    transact(chain.registry.functions.revoke(doctor, scope, TREATMENT), patient)
    assert not allowed(chain, patient, doctor, record=scope)
    with reverts_with("NotActive()"):
        transact(chain.registry.functions.revoke(doctor, scope, TREATMENT), patient)


def test_category_and_record_consents_cover_only_their_scope_and_purpose(chain, doctor):
    patient = Account.create()
    lab, imaging = scope_hash("category:laboratory"), scope_hash("category:imaging")
    record = scope_hash("record:3f1c2a9e-0000-4000-8000-000000000001")
    relay(
        chain,
        chain.registry.functions.grantBatch(
            [
                signed_grant(chain.registry, patient, doctor, scope="category:laboratory"),
                signed_grant(
                    chain.registry,
                    patient,
                    doctor,
                    scope="record:3f1c2a9e-0000-4000-8000-000000000001",
                    purpose=TRAINING,
                ),
            ]
        ),
    )
    assert not allowed(chain, patient.address, doctor)  # no chart consent
    assert allowed(chain, patient.address, doctor, category=lab)
    assert not allowed(chain, patient.address, doctor, category=imaging)
    assert not allowed(chain, patient.address, doctor, category=lab, purpose=TRAINING)
    assert allowed(chain, patient.address, doctor, record=record, category=imaging, purpose=TRAINING)
    assert not allowed(chain, patient.address, doctor, record=record, purpose=TREATMENT)
    assert not allowed(chain, patient.address, chain.accounts.doctors[1].address, category=lab)


def test_chart_consent_covers_any_record_and_category(chain, doctor):
    patient = Account.create()
    relay(chain, chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, doctor)))
    assert allowed(
        chain, patient.address, doctor, record=scope_hash("record:x"), category=scope_hash("category:y")
    )
    assert not allowed(chain, patient.address, doctor, purpose=TRAINING)


def test_grant_batch_skips_bad_items_with_reason_and_applies_the_rest(chain, doctor):
    good_a, good_b, late, forged, stranger = (Account.create() for _ in range(5))
    unregistered = Account.create().address
    items = [
        signed_grant(chain.registry, good_a, doctor),
        signed_grant(chain.registry, late, doctor, deadline=chain_now(chain.w3) - 1),
        signed_grant(chain.registry, forged, doctor, signer=Account.create()),
        signed_grant(chain.registry, stranger, unregistered),
        signed_grant(chain.registry, good_b, doctor, version=5),
        signed_grant(chain.registry, good_b, doctor),
    ]
    receipt = relay(chain, chain.registry.functions.grantBatch(items))
    skipped = [
        (e.args.consentId, e.args.version, e.args.reason)
        for e in chain.registry.events.ConsentSkipped().process_receipt(receipt, errors=DISCARD)
    ]
    chart = scope_hash("chart")
    assert skipped == [
        (consent_id(late.address, doctor, chart, 0), 0, selector("DeadlineExpired()")),
        (consent_id(forged.address, doctor, chart, 0), 0, selector("BadSignature()")),
        (consent_id(stranger.address, unregistered, chart, 0), 0, selector("GranteeNotRegistered()")),
        (consent_id(good_b.address, doctor, chart, 0), 5, selector("BadVersion()")),
    ]
    granted = [
        e.args.patient
        for e in chain.registry.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)
    ]
    assert granted == [good_a.address, good_b.address]
    assert allowed(chain, good_a.address, doctor) and allowed(chain, good_b.address, doctor)
    assert not allowed(chain, late.address, doctor)


def test_revoke_batch_skips_bad_items_and_applies_the_rest(chain, doctor):
    patients = [Account.create() for _ in range(3)]
    relay(
        chain,
        chain.registry.functions.grantBatch([signed_grant(chain.registry, p, doctor) for p in patients]),
    )
    items = [
        signed_revoke(chain.registry, patients[0], doctor),
        signed_revoke(chain.registry, patients[1], doctor, version=0),
        signed_revoke(chain.registry, patients[2], doctor),
        signed_revoke(chain.registry, patients[2], doctor),  # same message again: version moved on
    ]
    receipt = relay(chain, chain.registry.functions.revokeBatch(items))
    reasons = [
        e.args.reason for e in chain.registry.events.ConsentSkipped().process_receipt(receipt, errors=DISCARD)
    ]
    assert reasons == [selector("BadVersion()"), selector("BadVersion()")]
    revoked = [
        e.args.patient
        for e in chain.registry.events.ConsentRevoked().process_receipt(receipt, errors=DISCARD)
    ]
    assert revoked == [patients[0].address, patients[2].address]
    assert [allowed(chain, p.address, doctor) for p in patients] == [False, True, False]


def test_hospital_account_can_receive_training_consent(chain):
    patient, account = Account.create(), chain.accounts.hospital_account.address
    relay(
        chain,
        chain.registry.functions.grantBySig(signed_grant(chain.registry, patient, account, purpose=TRAINING)),
    )
    assert allowed(chain, patient.address, account, purpose=TRAINING)
    assert not allowed(chain, patient.address, account, purpose=TREATMENT)
