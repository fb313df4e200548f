"""Ethereum addresses from outside: one normaliser to the checksummed form, one serializer field, and
every API that takes an address answering a malformed one the same way."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from access.identity.users import address_of
from healthhash.errors import DomainError
from healthhash.eth_address import (
    BadAddress,
    EthAddressField,
    checksummed_address,
    checksummed_or_none,
)
from tests.conftest import Personas

CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
BAD_CHECKSUM = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # one letter's case flipped
MALFORMED = [
    BAD_CHECKSUM,
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA",
    "0xzz" + "0" * 38,
    "alice",
    "",
    None,
    42,
]


@pytest.mark.parametrize("given", [CHECKSUMMED, CHECKSUMMED.lower(), "0x" + CHECKSUMMED[2:].upper()])
def test_any_case_of_a_valid_address_normalises_to_its_checksummed_form(given: str) -> None:
    assert checksummed_address(given, field="patient") == CHECKSUMMED
    assert checksummed_or_none(given) == CHECKSUMMED


@pytest.mark.parametrize("given", MALFORMED)
def test_malformed_or_mistyped_address_is_a_bad_address_naming_the_field(given: object) -> None:
    assert checksummed_or_none(given) is None
    with pytest.raises(BadAddress) as caught:
        checksummed_address(given, field="grantee")
    assert (caught.value.code, caught.value.field) == ("bad_address", "grantee")
    assert caught.value.detail == "grantee must be an Ethereum address"


def test_twenty_raw_bytes_are_not_an_address_here() -> None:
    assert checksummed_or_none(bytes.fromhex(CHECKSUMMED[2:])) is None


def test_a_caller_keeps_its_own_error_family_and_the_path_as_field() -> None:
    class BadThing(DomainError):
        code = "bad_thing"

    with pytest.raises(BadThing) as caught:
        checksummed_address("nope", field="typed_data.message.patient", error=BadThing)
    assert (caught.value.code, caught.value.field) == ("bad_thing", "typed_data.message.patient")
    assert caught.value.detail == "patient must be an Ethereum address"


class _AddressIn(serializers.Serializer):
    patient = EthAddressField()


def test_serializer_field_yields_the_checksummed_address() -> None:
    data = _AddressIn(data={"patient": CHECKSUMMED.lower()})
    assert data.is_valid(), data.errors
    assert data.validated_data["patient"] == CHECKSUMMED


def test_serializer_field_refuses_a_malformed_address_with_code_bad_address() -> None:
    data = _AddressIn(data={"patient": BAD_CHECKSUM})
    assert not data.is_valid()
    error = data.errors["patient"][0]
    assert (error.code, str(error)) == ("bad_address", "patient must be an Ethereum address")


def _calls(p: Personas) -> list[tuple[Any, str, str, str, dict[str, Any]]]:
    """(client, method, url, bad field, body) for every endpoint that takes an address."""
    alice, bob = p.client_for(p.alice), p.client_for(p.bob)
    treatment = {"scope": "chart", "purpose": "TREATMENT"}
    return [
        (
            alice,
            "get",
            "/api/consents/check",
            "patient",
            {"patient": BAD_CHECKSUM, "grantee": p.bob.eth_address, "purpose": "TREATMENT"},
        ),
        (
            alice,
            "get",
            "/api/consents/check",
            "grantee",
            {"patient": p.alice.eth_address, "grantee": "0x12", "purpose": "TREATMENT"},
        ),
        (
            alice,
            "post",
            "/api/consents/typed-data",
            "grantee",
            {"action": "grant", "grantee": "bob", **treatment},
        ),
        (alice, "post", "/api/consents", "grantee", {"grantee": "bob", "password": "x", **treatment}),
        (bob, "get", "/api/records", "patient", {"patient": "0xnot-an-address"}),
        (
            bob,
            "post",
            "/api/records",
            "patient",
            {"patient": BAD_CHECKSUM, "resource": {"resourceType": "Observation"}},
        ),
        (
            bob,
            "post",
            "/api/records/import",
            "patient",
            {"patient": BAD_CHECKSUM, "bundle": {"resourceType": "Bundle"}},
        ),
        (
            bob,
            "post",
            "/api/break-glass",
            "patient",
            {"patient": BAD_CHECKSUM, "reason": "unconscious in the ER"},
        ),
        (
            bob,
            "post",
            "/api/access-requests",
            "patient",
            {"patient": BAD_CHECKSUM, "reason": "follow-up", **treatment},
        ),
    ]


def test_every_api_taking_an_address_answers_a_malformed_one_with_bad_address(personas: Personas) -> None:
    for api, method, url, field, body in _calls(personas):
        if method == "get":
            response = api.get(url, body)
        else:
            response = api.post(url, body, format="json")
        assert response.status_code == 400, (url, response.json())
        assert response.json()["error"] == "bad_address", (url, response.json())
        assert response.json()["field"] == field, (url, response.json())


def test_an_address_in_lower_case_finds_the_same_patient(personas: Personas) -> None:
    p = personas
    params = {
        "patient": address_of(p.alice).lower(),
        "grantee": address_of(p.bob).lower(),
        "purpose": "TREATMENT",
    }
    response = p.client_for(p.alice).get("/api/consents/check", params)
    assert response.status_code == 200, response.json()
    assert response.json()["allowed"] is False
