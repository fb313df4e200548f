"""Directory on a real anvil chain: roles, signed relayed actions (nonce, deadline), re-activation, moves."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from contracts.typed_data import (
    OP_DEACTIVATE_DOCTOR,
    OP_DEACTIVATE_HOSPITAL,
    OP_REGISTER_DOCTOR,
    OP_REGISTER_HOSPITAL,
    OP_SET_HOSPITAL_ADMIN,
    hospital_id,
)
from tests.contracts.consent_signing import ZERO_ADDRESS, chain_now, reverts_with, signed_action
from tests.fixtures.chain import DeployedContracts, transact


@pytest.fixture
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


def action(op: int, hid: bytes, subject: str = ZERO_ADDRESS, admin: str = ZERO_ADDRESS) -> tuple:
    return (op, hid, subject, admin, 0, 0)


def fresh_hospital(chain: DeployedContracts, admin: str | None = None) -> tuple[bytes, str, str]:
    """Registers a new hospital directly as the consortium admin; returns (id, account, admin)."""
    hid = hospital_id("h-" + Account.create().address)
    account, admin = Account.create().address, admin or chain.accounts.hospital_admin.address
    transact(
        chain.directory.functions.execute(action(OP_REGISTER_HOSPITAL, hid, account, admin)),
        chain.accounts.consortium_admin.address,
    )
    return hid, account, admin


def is_grantee(chain: DeployedContracts, who: str) -> bool:
    return chain.directory.functions.isActiveGrantee(who).call()


def test_fixture_hospitals_and_doctors_are_active_grantees(chain):
    assert chain.directory.functions.hospital(chain.hospital_id).call() == [
        chain.accounts.hospital_account.address,
        chain.accounts.hospital_admin.address,
        True,
    ]
    doctor = chain.accounts.doctors[0].address
    assert chain.directory.functions.doctorOf(doctor).call() == [chain.hospital_id, True]
    assert is_grantee(chain, doctor) and is_grantee(chain, chain.accounts.hospital_account.address)
    assert not is_grantee(chain, chain.accounts.hospital_admin.address)


def test_only_consortium_admin_registers_hospitals(chain):
    hid = hospital_id("rogue")
    with reverts_with("NotAuthorized()"):
        transact(
            chain.directory.functions.execute(
                action(
                    OP_REGISTER_HOSPITAL, hid, Account.create().address, chain.accounts.hospital_admin.address
                )
            ),
            chain.accounts.hospital_admin.address,
        )


def test_only_that_hospitals_admin_registers_its_doctors(chain):
    with reverts_with("NotAuthorized()"):
        transact(
            chain.directory.functions.execute(
                action(OP_REGISTER_DOCTOR, chain.hospital_id, Account.create().address)
            ),
            chain.accounts.other_hospital_admin.address,
        )
    with reverts_with("NotAuthorized()"):
        transact(
            chain.directory.functions.execute(
                action(OP_REGISTER_DOCTOR, chain.hospital_id, Account.create().address)
            ),
            chain.accounts.consortium_admin.address,
        )


def test_register_doctor_emits_event_and_makes_a_grantee(chain):
    hid, _, admin = fresh_hospital(chain)
    doctor = Account.create().address
    receipt = transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, doctor)), admin)
    (event,) = chain.directory.events.DoctorRegistered().process_receipt(receipt, errors=DISCARD)
    assert (event.args.doctor, event.args.hospitalId) == (doctor, hid)
    assert is_grantee(chain, doctor)


def test_signed_action_is_relayed_and_consumes_the_nonce(chain):
    hid, _, _ = fresh_hospital(chain)
    admin = chain.accounts.hospital_admin
    doctor = Account.create().address
    nonce = chain.directory.functions.nonces(admin.address).call()
    signed, signature = signed_action(
        chain.directory, admin, op=OP_REGISTER_DOCTOR, hospital_id=hid, subject=doctor
    )
    transact(
        chain.directory.functions.executeBySig(signed, admin.address, signature),
        chain.accounts.relayer.address,
    )
    assert is_grantee(chain, doctor)
    assert chain.directory.functions.nonces(admin.address).call() == nonce + 1
    with reverts_with("BadNonce()"):
        transact(
            chain.directory.functions.executeBySig(signed, admin.address, signature),
            chain.accounts.relayer.address,
        )


def test_signed_action_past_deadline_is_rejected(chain):
    admin = chain.accounts.hospital_admin
    signed, signature = signed_action(
        chain.directory,
        admin,
        op=OP_REGISTER_DOCTOR,
        hospital_id=chain.hospital_id,
        subject=Account.create().address,
        deadline=chain_now(chain.w3) - 1,
    )
    with reverts_with("DeadlineExpired()"):
        transact(
            chain.directory.functions.executeBySig(signed, admin.address, signature),
            chain.accounts.relayer.address,
        )


def test_signed_action_claiming_another_signer_is_rejected(chain):
    admin, mallory = chain.accounts.hospital_admin, Account.create()
    nonce = chain.directory.functions.nonces(admin.address).call()
    signed, signature = signed_action(
        chain.directory,
        mallory,
        op=OP_REGISTER_DOCTOR,
        nonce=nonce,
        hospital_id=chain.hospital_id,
        subject=mallory.address,
    )
    with reverts_with("BadSignature()"):
        transact(
            chain.directory.functions.executeBySig(signed, admin.address, signature),
            chain.accounts.relayer.address,
        )


def test_validly_signed_action_without_authority_is_rejected(chain):
    mallory = Account.create()
    signed, signature = signed_action(
        chain.directory, mallory, op=OP_DEACTIVATE_HOSPITAL, hospital_id=chain.hospital_id
    )
    with reverts_with("NotAuthorized()"):
        transact(
            chain.directory.functions.executeBySig(signed, mallory.address, signature),
            chain.accounts.relayer.address,
        )
    assert chain.directory.functions.hospital(chain.hospital_id).call()[2] is True


def test_consortium_admin_registers_hospital_by_signature(chain):
    consortium = chain.accounts.consortium_admin
    hid, account, admin = (
        hospital_id("signed-" + Account.create().address),
        Account.create().address,
        Account.create(),
    )
    signed, signature = signed_action(
        chain.directory,
        consortium,
        op=OP_REGISTER_HOSPITAL,
        hospital_id=hid,
        subject=account,
        admin=admin.address,
    )
    receipt = transact(
        chain.directory.functions.executeBySig(signed, consortium.address, signature),
        chain.accounts.relayer.address,
    )
    (event,) = chain.directory.events.HospitalRegistered().process_receipt(receipt, errors=DISCARD)
    assert (event.args.hospitalId, event.args.account, event.args.admin) == (hid, account, admin.address)
    assert is_grantee(chain, account)


def test_deactivating_a_hospital_deactivates_its_doctors_and_account_until_reregistered(chain):
    hid, account, admin = fresh_hospital(chain)
    doctor = Account.create().address
    transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, doctor)), admin)
    consortium = chain.accounts.consortium_admin.address
    transact(chain.directory.functions.execute(action(OP_DEACTIVATE_HOSPITAL, hid)), consortium)
    assert not is_grantee(chain, doctor) and not is_grantee(chain, account)
    with reverts_with("HospitalNotActive()"):
        transact(
            chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, Account.create().address)),
            admin,
        )
    transact(chain.directory.functions.execute(action(OP_REGISTER_HOSPITAL, hid, account, admin)), consortium)
    assert is_grantee(chain, doctor) and is_grantee(chain, account)


def test_reregistering_a_deactivated_doctor_reactivates_it(chain):
    hid, _, admin = fresh_hospital(chain)
    doctor = Account.create().address
    transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, doctor)), admin)
    transact(chain.directory.functions.execute(action(OP_DEACTIVATE_DOCTOR, hid, doctor)), admin)
    assert chain.directory.functions.doctorOf(doctor).call() == [hid, False]
    assert not is_grantee(chain, doctor)
    transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, doctor)), admin)
    assert is_grantee(chain, doctor)
    with reverts_with("AlreadyActive()"):
        transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, doctor)), admin)


def test_doctor_belongs_to_one_hospital_at_a_time(chain):
    first, _, first_admin = fresh_hospital(chain)
    second, _, second_admin = fresh_hospital(chain, admin=chain.accounts.other_hospital_admin.address)
    doctor = Account.create().address
    transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, first, doctor)), first_admin)
    with reverts_with("DoctorOfOtherHospital()"):
        transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, second, doctor)), second_admin)
    transact(chain.directory.functions.execute(action(OP_DEACTIVATE_DOCTOR, first, doctor)), first_admin)
    transact(chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, second, doctor)), second_admin)
    assert chain.directory.functions.doctorOf(doctor).call() == [second, True]
    with reverts_with("NotActive()"):  # the old hospital no longer manages this doctor
        transact(chain.directory.functions.execute(action(OP_DEACTIVATE_DOCTOR, first, doctor)), first_admin)


def test_new_hospital_admin_takes_over_doctor_management(chain):
    hid, _, old_admin = fresh_hospital(chain)
    new_admin = chain.w3.eth.accounts[9]
    receipt = transact(
        chain.directory.functions.execute(action(OP_SET_HOSPITAL_ADMIN, hid, admin=new_admin)), old_admin
    )
    (event,) = chain.directory.events.HospitalAdminChanged().process_receipt(receipt, errors=DISCARD)
    assert event.args.admin == new_admin
    with reverts_with("NotAuthorized()"):
        transact(
            chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, Account.create().address)),
            old_admin,
        )
    transact(
        chain.directory.functions.execute(action(OP_REGISTER_DOCTOR, hid, Account.create().address)),
        new_admin,
    )


def test_hospital_account_cannot_serve_two_hospitals(chain):
    _, account, admin = fresh_hospital(chain)
    with reverts_with("AccountInUse()"):
        transact(
            chain.directory.functions.execute(
                action(OP_REGISTER_HOSPITAL, hospital_id("dup-" + account), account, admin)
            ),
            chain.accounts.consortium_admin.address,
        )


def test_unknown_op_and_unknown_hospital_are_rejected(chain):
    with reverts_with("UnknownOp()"):
        transact(
            chain.directory.functions.execute(action(9, chain.hospital_id)),
            chain.accounts.hospital_admin.address,
        )
    with reverts_with("UnknownHospital()"):
        transact(
            chain.directory.functions.execute(
                action(OP_REGISTER_DOCTOR, hospital_id("nowhere"), Account.create().address)
            ),
            chain.accounts.hospital_admin.address,
        )
