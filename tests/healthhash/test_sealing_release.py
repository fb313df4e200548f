"""Specification of healthhash.sealing's sealing to a public key: ECIES on secp256k1 (checked against an
independent decryption from the documented format) and dataset releases sealed once to a hospital."""

from __future__ import annotations

import secrets

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhash.sealing import (
    SealBroken,
    open_release,
    open_sealed,
    open_with_private_key,
    public_key_of,
    record_aad,
    record_content_aad,
    release_aad,
    seal_release,
    seal_to_public_key,
)

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
AAD = release_aad(job_key="job-1", hospital_account="0xAbC", pinned_block=42)


def _independent_ecies_open(sealed: bytes, private_key: bytes) -> bytes:
    """The documented format opened with coincurve's ECDH point and cryptography's HKDF and AES-GCM."""
    ephemeral, nonce, tag, body = sealed[:65], sealed[65:81], sealed[81:97], sealed[97:]
    shared_point = coincurve.PublicKey(ephemeral).multiply(private_key).format(compressed=False)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=None).derive(ephemeral + shared_point)
    return AESGCM(key).decrypt(nonce, body + tag, None)


def test_public_key_is_the_one_the_ethereum_address_hashes() -> None:
    account = Account.from_key(SECRET)
    uncompressed = public_key_of(SECRET, compressed=False)
    assert account._key_obj.public_key.to_bytes() == uncompressed[1:]
    assert len(public_key_of(SECRET)) == 33
    assert coincurve.PublicKey(public_key_of(SECRET)).format(compressed=False) == uncompressed


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_sealed_to_a_key_opens_with_that_key_and_by_the_documented_format(
    plaintext: bytes, compressed: bool
) -> None:
    sealed = seal_to_public_key(plaintext, public_key=public_key_of(SECRET, compressed=compressed))
    assert open_with_private_key(sealed, private_key=SECRET) == plaintext
    assert _independent_ecies_open(sealed, SECRET) == plaintext


def test_sealed_to_a_key_fails_loudly_with_another_key_or_a_flipped_byte() -> None:
    sealed = seal_to_public_key(b"release key", public_key=public_key_of(SECRET))
    with pytest.raises(SealBroken):
        open_with_private_key(sealed, private_key=secrets.token_bytes(32))
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(SealBroken):
        open_with_private_key(bytes(flipped), private_key=SECRET)
    with pytest.raises(SealBroken):
        open_with_private_key(sealed[:40], private_key=SECRET)


def test_a_release_is_one_key_agreement_then_aes_gcm_over_the_whole_list() -> None:
    plaintext = b'{"records": []}' * 1000
    sealed = seal_release(plaintext, public_key=public_key_of(SECRET), aad=AAD)
    key_len = int.from_bytes(sealed[1:3], "big")
    release_key = _independent_ecies_open(sealed[3 : 3 + key_len], SECRET)
    assert len(release_key) == 32
    assert open_sealed(sealed[3 + key_len :], data_key=release_key, aad=AAD) == plaintext
    assert open_release(sealed, private_key=SECRET, aad=AAD) == plaintext
    # One ECIES header, however long the list: the rest is the list plus one GCM header and tag.
    assert len(sealed) == 3 + key_len + 1 + 12 + len(plaintext) + 16


@pytest.mark.parametrize(
    "other_aad",
    [
        release_aad(job_key="job-2", hospital_account="0xAbC", pinned_block=42),
        release_aad(job_key="job-1", hospital_account="0xDeF", pinned_block=42),
        release_aad(job_key="job-1", hospital_account="0xAbC", pinned_block=43),
    ],
)
def test_a_release_does_not_open_for_another_job_hospital_or_block(other_aad: bytes) -> None:
    sealed = seal_release(b"list", public_key=public_key_of(SECRET), aad=AAD)
    with pytest.raises(SealBroken):
        open_release(sealed, private_key=SECRET, aad=other_aad)


def test_a_release_does_not_open_with_another_key_or_when_altered() -> None:
    sealed = seal_release(b"list", public_key=public_key_of(SECRET), aad=AAD)
    with pytest.raises(SealBroken):
        open_release(sealed, private_key=secrets.token_bytes(32), aad=AAD)
    altered = bytearray(sealed)
    altered[-3] ^= 0x40
    with pytest.raises(SealBroken):
        open_release(bytes(altered), private_key=SECRET, aad=AAD)
    with pytest.raises(SealBroken):
        open_release(b"\x02" + sealed[1:], private_key=SECRET, aad=AAD)


def test_record_content_aad_is_record_aad_with_a_lower_case_address() -> None:
    assert record_content_aad("rec-1", "0xAbCd") == record_aad("rec-1", "0xabcd")
