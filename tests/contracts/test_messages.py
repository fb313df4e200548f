"""The signed messages (contracts.messages) and the outbox items (contracts.relayer_kinds) keep their wire
formats: the JSON and signatures below were produced by the builders these classes replaced, so a
change here breaks wallets, pending signatures and outbox rows already stored."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from contracts import typed_data
from contracts.messages import BadMessage, DirectoryAction, Domain, Grant, Revoke
from contracts.relayer_kinds import (
    KINDS,
    AuditRootItem,
    ConsentGrantItem,
    ConsentRevokeItem,
    DirectoryActionItem,
    RecordRootItem,
)

KEY = "0x" + "11" * 32
PATIENT = Account.from_key(KEY).address
DOCTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
REGISTRY = Domain(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
DIRECTORY = Domain(31337, "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512")
DOMAIN_TYPE = (
    '"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}, '
    '{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]'
)

GRANT_JSON = (
    '{"types": {' + DOMAIN_TYPE + ', "Grant": [{"name": "patient", "type": "address"}, '
    '{"name": "grantee", "type": "address"}, {"name": "scope", "type": "string"}, '
    '{"name": "purpose", "type": "uint8"}, {"name": "expiresAt", "type": "uint64"}, '
    '{"name": "version", "type": "uint32"}, {"name": "deadline", "type": "uint64"}]}, '
    '"domain": {"name": "HealthHash Consent", "version": "1", "chainId": 31337, '
    '"verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}, "primaryType": "Grant", '
    '"message": {"patient": "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", '
    '"grantee": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "scope": "category:laboratory", '
    '"purpose": 1, "expiresAt": 1900000000, "version": 3, "deadline": "9223372036854775808"}}'
)
GRANT_SIGNATURE = (
    "0x70cecea7892caaa2e31b1e7ddd724d7252765c8b69713c6a4e15c8745d56cfbb"
    "37401d5dc126da4f45d52e3fce78211762e839f982c6af6de02c19a60198146f1c"
)
REVOKE_JSON = (
    '{"types": {' + DOMAIN_TYPE + ', "Revoke": [{"name": "patient", "type": "address"}, '
    '{"name": "grantee", "type": "address"}, {"name": "scope", "type": "string"}, '
    '{"name": "purpose", "type": "uint8"}, {"name": "version", "type": "uint32"}, '
    '{"name": "deadline", "type": "uint64"}]}, '
    '"domain": {"name": "HealthHash Consent", "version": "1", "chainId": 31337, '
    '"verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}, "primaryType": "Revoke", '
    '"message": {"patient": "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", '
    '"grantee": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "scope": "chart", "purpose": 0, '
    '"version": 4, "deadline": 1800000000}}'
)
REVOKE_SIGNATURE = (
    "0xb02ef801fea6fbade016d1701c8d4fed10f6e527aae45242b046057c0fbcce7c"
    "17a7c82cb18e53a48844d272d0c3d59c1a1657d0d35316a38c684f72c5a92fcd1c"
)
DIRECTORY_JSON = (
    '{"types": {' + DOMAIN_TYPE + ', "DirectoryAction": [{"name": "op", "type": "uint8"}, '
    '{"name": "hospitalId", "type": "bytes32"}, {"name": "subject", "type": "address"}, '
    '{"name": "admin", "type": "address"}, {"name": "nonce", "type": "uint64"}, '
    '{"name": "deadline", "type": "uint64"}]}, '
    '"domain": {"name": "HealthHash Directory", "version": "1", "chainId": 31337, '
    '"verifyingContract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"}, "primaryType": "DirectoryAction", '
    '"message": {"op": 2, "hospitalId": "0x' + "ab" * 32 + '", '
    '"subject": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", '
    '"admin": "0x0000000000000000000000000000000000000000", "nonce": 7, "deadline": 1800000000}}'
)
DIRECTORY_SIGNATURE = (
    "0xa6464297b6534d4864486c45488b5e251970bdd2ccab04aca5805f463341f745"
    "36c729494b2daa02fe2f369a0f433224897903ce19cf18cc67eaf705731f7cd21b"
)


def grant() -> Grant:
    return Grant(
        patient=PATIENT.lower(),  # checksummed on construction
        grantee=DOCTOR.lower(),
        scope="category:laboratory",
        purpose=1,
        expires_at=1_900_000_000,
        version=3,
        deadline=2**63,
    )


def revoke() -> Revoke:
    return Revoke(
        patient=PATIENT, grantee=DOCTOR, scope="chart", purpose=0, version=4, deadline=1_800_000_000
    )


def action() -> DirectoryAction:
    return DirectoryAction(op=2, hospital_id=b"\xab" * 32, subject=DOCTOR, nonce=7, deadline=1_800_000_000)


def signed(payload: dict) -> str:
    return "0x" + bytes(Account.sign_typed_data(KEY, full_message=payload).signature).hex()


@pytest.mark.parametrize(
    ("message", "domain", "expected_json", "expected_signature"),
    [
        (grant(), REGISTRY, GRANT_JSON, GRANT_SIGNATURE),
        (revoke(), REGISTRY, REVOKE_JSON, REVOKE_SIGNATURE),
        (action(), DIRECTORY, DIRECTORY_JSON, DIRECTORY_SIGNATURE),
    ],
    ids=["Grant", "Revoke", "DirectoryAction"],
)
def test_typed_data_is_byte_identical_to_what_wallets_signed_before(
    message, domain, expected_json, expected_signature
) -> None:
    payload = message.typed_data(domain)
    assert json.dumps(payload) == expected_json
    assert signed(payload) == expected_signature


def test_grant_and_revoke_calldata_pack_terms_and_compact_the_signature_as_before() -> None:
    grant_args = grant().calldata(GRANT_SIGNATURE)
    assert grant_args[:4] == (
        PATIENT,
        DOCTOR,
        typed_data.scope_hash("category:laboratory"),
        187072209578355573530071658601851325965054701142017,
    )
    assert grant_args[4].hex() == GRANT_SIGNATURE[2:66]
    assert grant_args[5].hex() == "b7401d5dc126da4f45d52e3fce78211762e839f982c6af6de02c19a60198146f"
    revoke_args = revoke().calldata(bytes.fromhex(REVOKE_SIGNATURE[2:]))
    assert revoke_args[3] == 36508337286573006781994518246307380854784  # expiresAt packed as 0
    assert revoke_args[5].hex() == "97a7c82cb18e53a48844d272d0c3d59c1a1657d0d35316a38c684f72c5a92fcd"
    assert action().as_tuple() == (2, b"\xab" * 32, DOCTOR, typed_data.ZERO_ADDRESS, 7, 1_800_000_000)


def test_a_message_parsed_from_its_own_json_is_the_same_message() -> None:
    for message in (grant(), revoke(), action()):
        wire = json.loads(json.dumps(message.message()))
        assert type(message).from_message(wire) == message


def test_parser_takes_integers_as_wallets_send_them() -> None:
    wire = {**grant().message(), "purpose": "0x1", "expiresAt": "1900000000", "version": 3}
    assert Grant.from_message(wire) == grant()


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"scope": None}, "typed_data.message.scope", "scope is missing"),
        ({"grantee": "0x1234"}, "typed_data.message.grantee", "grantee must be an Ethereum address"),
        ({"purpose": True}, "typed_data.message.purpose", "purpose must be an integer"),
        ({"version": "three"}, "typed_data.message.version", "version must be an integer"),
        ({"deadline": -1}, "typed_data.message.deadline", "deadline must not be negative"),
        ({"scope": 7}, "typed_data.message.scope", "scope must be a string"),
    ],
)
def test_parser_errors_name_the_field(change, field, detail) -> None:
    wire = {**grant().message(), **change}
    wire = {name: value for name, value in wire.items() if value is not None}
    with pytest.raises(BadMessage) as caught:
        Grant.from_message(wire)
    assert caught.value.field == field and caught.value.code == "bad_payload"
    assert caught.value.detail.startswith(detail)


def test_directory_parser_refuses_a_hospital_id_that_is_not_32_bytes() -> None:
    wire = {**action().message(), "hospitalId": "0xabcd"}
    with pytest.raises(BadMessage) as caught:
        DirectoryAction.from_message(wire, field_prefix="message.")
    assert caught.value.field == "message.hospitalId"


def test_the_scope_is_hashed_once_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = typed_data.scope_hash

    def counted(scope: str) -> bytes:
        calls.append(scope)
        return real(scope)

    monkeypatch.setattr(typed_data, "scope_hash", counted)
    message = grant()
    message.calldata(GRANT_SIGNATURE)
    message.calldata(GRANT_SIGNATURE)
    assert message.consent_key == "0x" + typed_data.consent_id(PATIENT, DOCTOR, real(message.scope), 1).hex()
    assert calls == ["category:laboratory"]


def test_items_store_the_payloads_and_keys_that_existing_rows_have() -> None:
    consent_key = grant().consent_key
    grant_item = ConsentGrantItem(grant(), bytes.fromhex(GRANT_SIGNATURE[2:]))
    assert grant_item.payload == {"message": json.loads(GRANT_JSON)["message"], "signature": GRANT_SIGNATURE}
    assert grant_item.idempotency_key == f"consent.grant:{consent_key}:3"
    revoke_item = ConsentRevokeItem(revoke(), REVOKE_SIGNATURE)
    assert revoke_item.payload["message"] == json.loads(REVOKE_JSON)["message"]
    assert revoke_item.idempotency_key == f"consent.revoke:{revoke().consent_key}:4"
    action_item = DirectoryActionItem(action(), PATIENT.lower(), DIRECTORY_SIGNATURE)
    assert action_item.payload == {
        "message": json.loads(DIRECTORY_JSON)["message"],
        "signer": PATIENT,
        "signature": DIRECTORY_SIGNATURE,
    }
    assert action_item.idempotency_key == f"directory.action:{PATIENT}:7"
    record_root = RecordRootItem(root="0x" + "ef" * 32, record_count=1000, batch_id="0x" + "02" * 32)
    assert record_root.payload == {"root": "0x" + "ef" * 32, "recordCount": 1000, "batchId": "0x" + "02" * 32}
    assert record_root.idempotency_key == "anchor.record_root:0x" + "02" * 32
    root = AuditRootItem(root="0x" + "cd" * 32, head_count=7, batch_id="0x" + "01" * 32)
    assert root.payload == {"root": "0x" + "cd" * 32, "headCount": 7, "batchId": "0x" + "01" * 32}
    assert root.idempotency_key == "anchor.audit_root:0x" + "01" * 32


def test_a_stored_consent_row_encodes_to_the_same_calldata_as_its_message() -> None:
    """What the relayer does with an outbox row written before typed items existed."""
    stored = {"message": json.loads(GRANT_JSON)["message"], "signature": GRANT_SIGNATURE}
    assert KINDS["consent.grant"].encode_item(stored) == grant().calldata(GRANT_SIGNATURE)
    enveloped = {"typed_data": json.loads(REVOKE_JSON), "signature": REVOKE_SIGNATURE}
    assert KINDS["consent.revoke"].encode_item(enveloped) == revoke().calldata(REVOKE_SIGNATURE)
