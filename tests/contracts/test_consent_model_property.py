"""Property: over random grant/revoke/wait sequences signed by an independent signer (eth_account), the
registry's isAllowed and consentOf agree with a small Python model of the consent rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.logs import DISCARD

from contracts.typed_data import consent_id, scope_hash
from tests.contracts.consent_signing import ZERO32, chain_now, signed_grant, signed_revoke
from tests.fixtures.chain import ChainClock, DeployedContracts, transact

SCOPES = ("chart", "category:laboratory", "record:0b7e-1")
EXPIRY_OFFSETS = (0, 50, 10_000)  # 0 = never

grant_op = st.tuples(
    st.just("grant"),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 2),
    st.integers(0, 1),
    st.sampled_from(EXPIRY_OFFSETS),
    st.booleans(),
)
revoke_op = st.tuples(
    st.just("revoke"),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 2),
    st.integers(0, 1),
    st.just(0),
    st.booleans(),
)
wait_op = st.tuples(st.just("wait"), st.sampled_from((30, 60, 120)))
operations = st.lists(st.one_of(grant_op, revoke_op, wait_op), min_size=1, max_size=8)


@dataclass
class ConsentModel:
    """(patient, grantee, scope, purpose) -> (active, expiresAt, version), as the contract should keep it."""

    consents: dict[tuple, tuple[bool, int, int]] = field(default_factory=dict)

    def state(self, key: tuple) -> tuple[bool, int, int]:
        return self.consents.get(key, (False, 0, 0))

    def live(self, key: tuple, now: int) -> bool:
        active, expires_at, _ = self.state(key)
        return active and (expires_at == 0 or expires_at > now)

    def allowed(self, patient: str, grantee: str, scope: str | None, purpose: int, now: int) -> bool:
        scopes = ["chart"] + ([scope] if scope else [])
        return any(self.live((patient, grantee, s, purpose), now) for s in scopes)


@pytest.fixture(scope="module")
def chain(deployed_contracts: DeployedContracts) -> DeployedContracts:
    return deployed_contracts


def apply(
    clock: ChainClock,
    chain: DeployedContracts,
    model: ConsentModel,
    op: tuple,
    patients: list,
    grantees: list[str],
) -> None:
    if op[0] == "wait":
        clock.advance(op[1])
        return
    kind, p, g, s, purpose, offset, stale = op
    key = (patients[p].address, grantees[g], SCOPES[s], purpose)
    active, _, version = model.state(key)
    signed_version = version + 1 if stale else version
    relayer = chain.accounts.relayer.address
    if kind == "grant":
        expires_at = chain_now(chain.w3) + offset if offset else 0
        item = signed_grant(
            chain.registry,
            patients[p],
            grantees[g],
            scope=SCOPES[s],
            purpose=purpose,
            expires_at=expires_at,
            version=signed_version,
        )
        receipt = transact(chain.registry.functions.grantBatch([item]), relayer)
        applied = not stale
        if applied:
            model.consents[key] = (True, expires_at, version + 1)
    else:
        item = signed_revoke(
            chain.registry, patients[p], grantees[g], scope=SCOPES[s], purpose=purpose, version=signed_version
        )
        receipt = transact(chain.registry.functions.revokeBatch([item]), relayer)
        applied = not stale and active
        if applied:
            model.consents[key] = (False, 0, version + 1)
    skipped = chain.registry.events.ConsentSkipped().process_receipt(receipt, errors=DISCARD)
    assert len(skipped) == (0 if applied else 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_is_allowed_agrees_with_the_python_model(chain, chain_clock: ChainClock, ops):
    patients = [Account.create() for _ in range(2)]
    grantees = [chain.accounts.doctors[0].address, chain.accounts.hospital_account.address]
    model = ConsentModel()
    for op in ops:
        apply(chain_clock, chain, model, op, patients, grantees)
    now = chain_now(chain.w3)
    for key, expected in model.consents.items():
        cid = consent_id(key[0], key[1], scope_hash(key[2]), key[3])
        assert tuple(chain.registry.functions.consentOf(cid).call()) == expected
    for patient in patients:
        for grantee in grantees:
            for purpose in (0, 1):
                for query in (None, "category:laboratory", "record:0b7e-1"):
                    record = scope_hash(query) if query and query.startswith("record:") else ZERO32
                    category = scope_hash(query) if query and query.startswith("category:") else ZERO32
                    onchain = chain.registry.functions.isAllowed(
                        patient.address, grantee, record, category, purpose
                    ).call()
                    assert onchain == model.allowed(patient.address, grantee, query, purpose, now)
