"""Payloads of contracts.messages, signed by ethers v6 as a browser wallet would, are accepted on chain."""

from __future__ import annotations

import pytest
from eth_account import Account

from contracts.messages import DirectoryAction, Domain, Grant
from contracts.typed_data import OP_REGISTER_DOCTOR, scope_hash
from tests.contracts.consent_signing import chain_now
from tests.ethers_wallet import ethers_sign
from tests.fixtures.chain import DeployedContracts, transact


@pytest.fixture
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


def test_ethers_signed_grant_is_accepted_by_grant_by_sig(chain):
    patient, doctor = Account.create(), chain.accounts.doctors[1].address
    grant = Grant(
        patient=patient.address,
        grantee=doctor,
        scope="category:laboratory",
        purpose=1,
        expires_at=chain_now(chain.w3) + 86_400,
        version=0,
        deadline=2**63,  # above 2**53: travels as a decimal string
    )
    payload = grant.typed_data(Domain(chain.chain_id, chain.registry.address))
    assert isinstance(payload["message"]["deadline"], str)
    signature = ethers_sign(bytes(patient.key), payload)
    assert signature == Account.sign_typed_data(patient.key, full_message=payload).signature
    transact(
        chain.registry.functions.grantBySig(grant.calldata(signature)),
        chain.accounts.relayer.address,
    )
    assert chain.registry.functions.isAllowed(
        patient.address, doctor, b"\0" * 32, scope_hash("category:laboratory"), 1
    ).call()


def test_ethers_signed_directory_action_is_accepted(chain):
    admin = chain.accounts.hospital_admin
    doctor = Account.create().address
    action = DirectoryAction(
        op=OP_REGISTER_DOCTOR,
        hospital_id=chain.hospital_id,
        subject=doctor,
        nonce=chain.directory.functions.nonces(admin.address).call(),
        deadline=chain_now(chain.w3) + 600,
    )
    payload = action.typed_data(Domain(chain.chain_id, chain.directory.address))
    signature = ethers_sign(bytes(admin.key), payload)
    transact(
        chain.directory.functions.executeBySig(*action.calldata(signer=admin.address, signature=signature)),
        chain.accounts.relayer.address,
    )
    assert chain.directory.functions.isActiveGrantee(doctor).call()
