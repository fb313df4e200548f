"""Test helpers: sign Grant/Revoke/DirectoryAction payloads with eth_account; check custom-error reverts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError

from contracts.codec import SignedConsentTuple
from contracts.messages import DirectoryAction, Domain, Grant, Revoke

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20


def chain_now(w3: Web3) -> int:
    """The latest block's timestamp (the tests move chain time, so wall time is meaningless)."""
    return int(w3.eth.get_block("latest")["timestamp"])


def selector(error_signature: str) -> bytes:
    return keccak(text=error_signature)[:4]


@contextlib.contextmanager
def reverts_with(error_signature: str) -> Iterator[None]:
    """Expects a revert with exactly the custom error `error_signature` (e.g. "BadVersion()")."""
    with pytest.raises(ContractCustomError) as caught:
        yield
    data = caught.value.data if isinstance(caught.value.data, str) else caught.value.args[0]
    assert data[:10] == "0x" + selector(error_signature).hex(), data


def signed_grant(
    registry: Any,
    patient: LocalAccount,
    grantee: str,
    *,
    scope: str = "chart",
    purpose: int = 0,
    expires_at: int = 0,
    version: int = 0,
    deadline: int | None = None,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
    signer: LocalAccount | None = None,
) -> SignedConsentTuple:
    """A SignedGrant tuple; the overrides build the wrong-domain / wrong-signer cases."""
    w3 = registry.w3
    grant = Grant(
        patient=patient.address,
        grantee=grantee,
        scope=scope,
        purpose=purpose,
        expires_at=expires_at,
        version=version,
        deadline=deadline if deadline is not None else chain_now(w3) + 3600,
    )
    domain = Domain(
        chain_id if chain_id is not None else w3.eth.chain_id, verifying_contract or registry.address
    )
    return _signed(grant, domain, signer or patient)


def signed_revoke(
    registry: Any,
    patient: LocalAccount,
    grantee: str,
    *,
    scope: str = "chart",
    purpose: int = 0,
    version: int = 1,
    deadline: int | None = None,
    signer: LocalAccount | None = None,
) -> SignedConsentTuple:
    """A SignedRevoke tuple (by default of the consent's version 1: the one after its first grant)."""
    w3 = registry.w3
    revoke = Revoke(
        patient=patient.address,
        grantee=grantee,
        scope=scope,
        purpose=purpose,
        version=version,
        deadline=deadline if deadline is not None else chain_now(w3) + 3600,
    )
    return _signed(revoke, Domain(w3.eth.chain_id, registry.address), signer or patient)


def _signed(message: Grant | Revoke, domain: Domain, signer: LocalAccount) -> SignedConsentTuple:
    payload = message.typed_data(domain)
    return message.calldata(Account.sign_typed_data(signer.key, full_message=payload).signature)


def signed_action(
    directory: Any,
    signer: LocalAccount,
    *,
    op: int,
    hospital_id: bytes,
    subject: str = ZERO_ADDRESS,
    admin: str = ZERO_ADDRESS,
    nonce: int | None = None,
    deadline: int | None = None,
) -> tuple[tuple, bytes]:
    """(Action tuple, 65-byte signature) of a DirectoryAction signed by `signer`."""
    w3 = directory.w3
    action = DirectoryAction(
        op=op,
        hospital_id=hospital_id,
        subject=subject,
        admin=admin,
        nonce=nonce if nonce is not None else directory.functions.nonces(signer.address).call(),
        deadline=deadline if deadline is not None else chain_now(w3) + 3600,
    )
    payload = action.typed_data(Domain(w3.eth.chain_id, directory.address))
    signature = Account.sign_typed_data(signer.key, full_message=payload).signature
    return action.as_tuple(), bytes(signature)
