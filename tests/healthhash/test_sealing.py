"""Specification of healthhash.sealing: envelope encryption, key wrapping, rotation and key hygiene."""

from __future__ import annotations

import base64
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthhash import sealing
from healthhash.sealing import (
    KeyRing,
    KeyUnavailable,
    SealBroken,
    new_data_key,
    new_kek_entry,
    open_sealed,
    open_secret,
    record_aad,
    rewrap,
    seal,
    seal_secret,
    seal_with_new_key,
    unwrap_key,
    wrap_key,
    wrapped_key_id,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.b64encode(KEY_B).decode()
CONTEXT = record_aad("rec-1", "0xpatient")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.from_string(f"k1:{B64_A}")


# --------------------------------------------------------------------------- content


def test_sealed_content_opens_with_same_key_and_aad() -> None:
    key = new_data_key()
    aad = record_aad("rec-1", "0xpatient")
    sealed = seal(b"blood pressure 120/80", data_key=key, aad=aad)
    assert open_sealed(sealed, data_key=key, aad=aad) == b"blood pressure 120/80"


def test_sealed_format_is_version_nonce_ciphertext_tag() -> None:
    sealed = seal(b"x" * 10, data_key=new_data_key(), aad=b"")
    assert sealed[0] == sealing.FORMAT_V1
    assert len(sealed) == 1 + 12 + 10 + 16


def test_each_seal_uses_a_fresh_nonce() -> None:
    key = new_data_key()
    assert seal(b"same", data_key=key, aad=b"")[1:13] != seal(b"same", data_key=key, aad=b"")[1:13]


def test_empty_plaintext_roundtrips() -> None:
    key = new_data_key()
    assert open_sealed(seal(b"", data_key=key, aad=b"a"), data_key=key, aad=b"a") == b""


@pytest.mark.parametrize(
    ("record_id", "patient"),
    [("rec-2", "0xpatient"), ("rec-1", "0xother"), ("rec-10xpatient", ""), ("", "rec-10xpatient")],
)
def test_content_sealed_for_one_record_fails_for_another_record_or_patient(
    record_id: str, patient: str
) -> None:
    key = new_data_key()
    sealed = seal(b"secret", data_key=key, aad=record_aad("rec-1", "0xpatient"))
    with pytest.raises(SealBroken):
        open_sealed(sealed, data_key=key, aad=record_aad(record_id, patient))


def test_record_aad_encoding_is_unambiguous() -> None:
    assert record_aad("ab", "c") != record_aad("a", "bc")
    assert record_aad("a:b", "c") != record_aad("a", "b:c")


def test_flipping_any_single_bit_of_sealed_content_is_detected() -> None:
    key = new_data_key()
    sealed = bytes(seal(b"lab result: HbA1c 6.1%", data_key=key, aad=CONTEXT))
    for bit in range(len(sealed) * 8):
        tampered = bytearray(sealed)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SealBroken):
            open_sealed(bytes(tampered), data_key=key, aad=CONTEXT)


def test_truncated_sealed_content_is_broken_not_an_index_error() -> None:
    key = new_data_key()
    sealed = seal(b"abc", data_key=key, aad=b"")
    for cut in (0, 1, 13, len(sealed) - 1):
        with pytest.raises(SealBroken):
            open_sealed(sealed[:cut], data_key=key, aad=b"")


def test_opening_with_another_data_key_fails() -> None:
    sealed = seal(b"abc", data_key=new_data_key(), aad=b"")
    with pytest.raises(SealBroken):
        open_sealed(sealed, data_key=new_data_key(), aad=b"")


def test_data_key_of_wrong_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"abc", data_key=b"short", aad=b"")


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=4096), record_id=st.text(max_size=40), patient=st.text(max_size=40))
def test_any_content_roundtrips_through_seal_and_wrap(plaintext: bytes, record_id: str, patient: str) -> None:
    ring = KeyRing.from_string(f"k1:{B64_A}")
    aad = record_aad(record_id, patient)
    sealed, wrapped = seal_with_new_key(plaintext, ring=ring, aad=aad, context=aad)
    data_key = unwrap_key(ring, wrapped, context=aad)
    assert open_sealed(sealed, data_key=data_key, aad=aad) == plaintext


# --------------------------------------------------------------------------- wrapping


def test_wrapped_key_unwraps_and_names_its_kid(ring: KeyRing) -> None:
    data_key = new_data_key()
    wrapped = wrap_key(ring, data_key, context=CONTEXT)
    assert wrapped_key_id(wrapped) == "k1"
    assert data_key not in wrapped
    assert unwrap_key(ring, wrapped, context=CONTEXT) == data_key


def test_wrapped_key_is_bound_to_its_context(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=record_aad("rec-1", "p"))
    with pytest.raises(SealBroken):
        unwrap_key(ring, wrapped, context=record_aad("rec-2", "p"))


def test_flipping_any_bit_of_a_wrapped_key_is_detected(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=CONTEXT)
    for bit in range(len(wrapped) * 8):
        tampered = bytearray(wrapped)
        tampered[bit // 8] ^= 1 << (bit % 8)
        # A flip in the kid may name a kid that is not in the ring: that is loud too.
        with pytest.raises((SealBroken, KeyUnavailable)):
            unwrap_key(ring, bytes(tampered), context=CONTEXT)


def test_missing_kek_raises_key_unavailable_naming_the_kid_without_key_bytes(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=CONTEXT)
    other = KeyRing.from_string(f"k2:{B64_B}")
    with pytest.raises(KeyUnavailable) as caught:
        unwrap_key(other, wrapped, context=CONTEXT)
    assert caught.value.key_id == "k1"
    assert "'k1'" in str(caught.value)
    assert B64_A not in str(caught.value) and B64_B not in str(caught.value)


def test_wrong_kek_bytes_under_the_same_kid_raise_seal_broken(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=CONTEXT)
    impostor = KeyRing.from_string(f"k1:{B64_B}")
    with pytest.raises(SealBroken) as caught:
        unwrap_key(impostor, wrapped, context=CONTEXT)
    assert B64_A not in str(caught.value) and B64_B not in str(caught.value)


def test_wrapped_key_with_unknown_format_is_broken(ring: KeyRing) -> None:
    for garbage in (b"", b"\x02\x02k1" + bytes(60), b"\x01\x05k1"):
        with pytest.raises(SealBroken):
            unwrap_key(ring, garbage, context=CONTEXT)


# --------------------------------------------------------------------------- rotation


def test_rewrap_moves_a_key_to_the_active_kid_and_content_still_opens(ring: KeyRing) -> None:
    sealed, wrapped_old = seal_with_new_key(b"chart", ring=ring, aad=CONTEXT, context=CONTEXT)
    rotated = ring.with_key("k2", KEY_B)
    assert rotated.active_kid == "k2"

    wrapped_new = rewrap(rotated, wrapped_old, context=CONTEXT)

    assert wrapped_key_id(wrapped_new) == "k2"
    key = unwrap_key(rotated.without("k1"), wrapped_new, context=CONTEXT)
    assert open_sealed(sealed, data_key=key, aad=CONTEXT) == b"chart"


def test_old_wrapped_key_opens_while_its_kid_stays_in_the_ring(ring: KeyRing) -> None:
    data_key = new_data_key()
    wrapped_old = wrap_key(ring, data_key, context=CONTEXT)
    rotated = ring.with_key("k2", KEY_B)
    assert unwrap_key(rotated, wrapped_old, context=CONTEXT) == data_key


def test_old_wrapped_key_fails_once_its_kid_is_removed_without_rewrap(ring: KeyRing) -> None:
    wrapped_old = wrap_key(ring, new_data_key(), context=CONTEXT)
    retired = ring.with_key("k2", KEY_B).without("k1")
    with pytest.raises(KeyUnavailable, match="k1"):
        unwrap_key(retired, wrapped_old, context=CONTEXT)


def test_rewrap_under_the_active_kid_returns_the_value_unchanged(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=CONTEXT)
    assert rewrap(ring, wrapped, context=CONTEXT) == wrapped


def test_rewrap_refuses_a_wrapped_key_from_another_context(ring: KeyRing) -> None:
    wrapped = wrap_key(ring, new_data_key(), context=CONTEXT)
    with pytest.raises(SealBroken):
        rewrap(ring.with_key("k2", KEY_B), wrapped, context=b"other")


# --------------------------------------------------------------------------- managed secrets


def test_managed_eth_key_roundtrips_and_is_bound_to_its_user(ring: KeyRing) -> None:
    eth_key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    sealed = seal_secret(eth_key, ring=ring, context=b"managed-eth-key:42")
    assert eth_key not in sealed
    assert open_secret(sealed, ring=ring, context=b"managed-eth-key:42") == eth_key
    with pytest.raises(SealBroken):
        open_secret(sealed, ring=ring, context=b"managed-eth-key:43")


def test_managed_secret_survives_kek_rotation_by_rewrap(ring: KeyRing) -> None:
    sealed = seal_secret(b"\x01" * 32, ring=ring, context=b"managed-eth-key:7")
    rotated = ring.with_key("k2", KEY_B)
    moved = rewrap(rotated, sealed, context=b"managed-eth-key:7")
    assert open_secret(moved, ring=rotated.without("k1"), context=b"managed-eth-key:7") == b"\x01" * 32


# --------------------------------------------------------------------------- key ring


def test_key_ring_parses_entries_and_first_is_active() -> None:
    ring = KeyRing.from_string(f" k2:{B64_B} , k1:{B64_A} ")
    assert ring.key_ids == ("k2", "k1")
    assert ring.active_kid == "k2"


def test_key_ring_active_kid_can_be_named() -> None:
    assert KeyRing.from_string(f"k2:{B64_B},k1:{B64_A}", active_kid="k1").active_kid == "k1"


def test_key_ring_reads_a_file_with_one_entry_a_line_and_comments(tmp_path) -> None:
    path = tmp_path / "kek"
    path.write_text(f"# rotated 2025-01\nk2:{B64_B}\nk1:{B64_A}  # retired\n")
    ring = KeyRing.from_setting(str(path))
    assert ring.key_ids == ("k2", "k1")


def test_generated_kek_entry_parses() -> None:
    assert KeyRing.from_string(new_kek_entry("k9")).active_kid == "k9"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("k1:not*base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"\x00" * 16).decode(), "must decode to 32 bytes"),
        ("k1" + B64_A, "kid:base64key"),
        ("", "no keys"),
        (f"k1:{B64_A},k1:{B64_B}", "twice"),
        (f"bad kid:{B64_A}", "key id must be"),
    ],
)
def test_key_ring_parse_errors_are_clear_and_do_not_echo_key_text(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        KeyRing.from_string(spec)
    key_text = spec.partition(":")[2]
    assert not key_text or key_text not in str(caught.value)
    assert B64_A not in str(caught.value) and B64_B not in str(caught.value)


def test_unknown_active_kid_is_rejected() -> None:
    with pytest.raises(ValueError, match="not in the ring"):
        KeyRing.from_string(f"k1:{B64_A}", active_kid="k9")


def test_key_ring_repr_names_kids_but_never_key_material(ring: KeyRing) -> None:
    for text in (repr(ring), str(ring), f"{ring}"):
        assert "k1" in text
        assert B64_A not in text and KEY_A.hex() not in text and repr(KEY_A) not in text


def test_key_ring_cannot_be_pickled(ring: KeyRing) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(ring)


def test_active_key_cannot_be_removed(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="active"):
        ring.without("k1")
