"""Property: the one consent rule (access/consent/rule.py) answers the same in both its forms, and as the
chain does.

Over random histories of grants (chart / category / record scopes, with and without expiry),
revocations, revocations still pending, and waits, for a few patients and grantees:

- for every record, grantee, purpose and moment (now, and every block of the history) the single check
  (`check`), the queryset form (`covering_consents` + `covered_records`) and a plain reference written
  here agree. Rows are built by the indexer's own handlers from events at real anvil blocks, so "as of
  block N" is judged by real block times (anvil's clock is moved, never slept on);
- on a small sample replayed on anvil (grants and revokes signed by an independent signer, relayed
  through the contract, indexed by the real indexer) they also agree with the contract's
  `isAllowed` asked at that very block (eth_call at block_identifier).
"""

from __future__ import annotations

import secrets
import types
import uuid
from dataclasses import dataclass, field

import pytest
from django.utils import timezone
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access.consent import chain_handlers, rule
from access.consent.scopes import scope_hash_hex
from access.identity.users import address_of
from access.models import Consent, ConsentStatus, Role, User
from contracts import indexer
from contracts.typed_data import consent_id, scope_hash
from ehr.models import Record
from tests.contracts.consent_signing import chain_now, signed_grant, signed_revoke
from tests.fixtures.chain import ChainClock, DeployedContracts, transact

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = ("laboratory", "imaging")  # each patient has one record of each
SCOPES = ("chart", "category:laboratory", "category:imaging", "record:0", "record:1")
NEVER, SOON, LATER = 0, 40, 100_000  # expiry offsets from the block's time (0 = never)

key_index = st.tuples(
    st.integers(0, 1), st.integers(0, 1), st.integers(0, len(SCOPES) - 1), st.integers(0, 1)
)
grant_op = st.tuples(st.just("grant"), key_index, st.sampled_from((NEVER, SOON, LATER, -1)), st.booleans())
revoke_op = st.tuples(st.just("revoke"), key_index, st.just(0), st.booleans())
pending_op = st.tuples(st.just("request_revoke"), key_index, st.just(0), st.booleans())
wait_op = st.tuples(st.just("wait"), st.sampled_from((30, 60)), st.just(0), st.just(False))
histories = st.lists(st.one_of(grant_op, grant_op, revoke_op, pending_op, wait_op), min_size=1, max_size=10)
chain_histories = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), key_index, st.sampled_from((NEVER, SOON, LATER)), st.just(False)),
        revoke_op,
        wait_op,
    ),
    min_size=1,
    max_size=6,
)


@dataclass
class Reference:
    """The rule as plainly as it can be said: the last grant or revoke of a key at or before the block
    decides; a grant allows until its expiry; asked now, a revocation not yet mined already denies."""

    ops: list[tuple[int, tuple, str, int | None]] = field(default_factory=list)  # block, key, kind, expiry
    pending: dict[tuple, bool] = field(default_factory=dict)

    def last(self, key: tuple, block: int | None) -> tuple[str, int | None] | None:
        found = None
        for at, other, kind, expires_at in self.ops:
            if other == key and (block is None or at <= block):
                found = (kind, expires_at)
        return found

    def live(self, key: tuple, block: int | None, moment: int) -> bool:
        last = self.last(key, block)
        if last is None or last[0] != "grant":
            return False
        if last[1] is not None and last[1] <= moment:
            return False
        return not (block is None and self.pending.get(key, False))

    def covers(
        self, patient: str, grantee: str, purpose: int, record: Record, block: int | None, moment: int
    ) -> bool:
        scopes = ("chart", f"category:{record.category}", f"record:{record.id}")
        return any(self.live((patient, grantee, scope, purpose), block, moment) for scope in scopes)


@dataclass
class World:
    patients: list[User]
    grantees: list[str]
    records: dict[str, list[Record]]  # patient address -> [laboratory record, imaging record]
    versions: dict[tuple, int] = field(default_factory=dict)
    blocks: list[int] = field(default_factory=list)

    def key(self, index: tuple) -> tuple:
        p, g, s, purpose = index
        patient = self.patients[p].eth_address
        scope = SCOPES[s]
        if scope.startswith("record:"):
            scope = f"record:{self.records[patient][int(scope[-1])].id}"
        return (patient, self.grantees[g], scope, purpose)


def _patient(address: str) -> User:
    return User.objects.create(username=f"p-{address[2:12]}", role=Role.PATIENT, eth_address=address)


def _records(patient: User) -> list[Record]:
    """Metadata rows only: the rule looks at id, patient and category, never at content."""
    return [
        Record.objects.create(
            patient=patient,
            patient_address=address_of(patient),
            category=category,
            resource_type="Observation",
            content_type="application/fhir+json",
            created_by=patient,
            cid="bafy-not-stored",
            sealed_size=0,
            digest="0" * 64,
            wrapped_key=b"",
            key_id="none",
        )
        for category in CATEGORIES
    ]


def _world(patients: list[str], grantees: list[str]) -> World:
    users = [_patient(address) for address in patients]
    return World(users, grantees, {address_of(user): _records(user) for user in users})


def _mine(chain: DeployedContracts, clock: ChainClock, seconds: int = 1) -> types.SimpleNamespace:
    clock.advance(seconds)
    block = chain.w3.eth.get_block("latest")
    return types.SimpleNamespace(number=int(block["number"]), timestamp=int(block["timestamp"]))


def _event(block: types.SimpleNamespace, **args: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        args=args, block_number=block.number, block_time=block.timestamp, tx_hash="0x" + secrets.token_hex(32)
    )


def _key_hex(key: tuple) -> str:
    patient, grantee, scope, purpose = key
    return "0x" + consent_id(patient, grantee, scope_hash(scope), purpose).hex()


def _apply_indexed(
    chain: DeployedContracts, clock: ChainClock, world: World, ref: Reference, op: tuple
) -> None:
    """One op as the indexer would see it: events handed to access's real handlers at a real block."""
    kind, index, offset, flag = op
    if kind == "wait":
        world.blocks.append(_mine(chain, clock, index).number)
        return
    key = world.key(index)
    block = _mine(chain, clock)
    world.blocks.append(block.number)
    last = ref.last(key, None)
    active = last is not None and last[0] == "grant"
    version = world.versions.get(key, 0) + 1
    if kind == "grant":
        # -1: already past by the wall clock, so "now" sees an expired consent too.
        expires_at = {NEVER: 0, -1: int(timezone.now().timestamp()) - 5}.get(offset, block.timestamp + offset)
        if flag:  # granted through our API: a pending row with the scope text exists before the event
            Consent.objects.create(
                consent_key=_key_hex(key),
                version=version,
                patient_address=key[0],
                grantee_address=key[1],
                scope=key[2],
                scope_hash=scope_hash_hex(key[2]),
                purpose=key[3],
            )
        chain_handlers.on_consent_granted(
            [
                _event(
                    block,
                    consentId=_key_hex(key),
                    version=version,
                    patient=key[0],
                    grantee=key[1],
                    scopeHash=scope_hash_hex(key[2]),
                    purpose=key[3],
                    expiresAt=expires_at,
                )
            ]
        )
        ref.ops.append((block.number, key, "grant", expires_at or None))
    elif kind == "revoke" and active:
        chain_handlers.on_consent_revoked([_event(block, consentId=_key_hex(key), version=version)])
        ref.ops.append((block.number, key, "revoke", None))
    elif kind == "request_revoke" and active:
        # Accepted by our API, not mined yet; a refused one (flag) no longer counts as pending.
        Consent.objects.filter(consent_key=_key_hex(key), status=ConsentStatus.ACTIVE).update(
            revoke_requested_at=timezone.now(), revoke_failure_reason="BadVersion" if flag else ""
        )
        ref.pending[key] = not flag
        return
    else:
        return
    world.versions[key] = version
    ref.pending[key] = False


def _queryset_answers(world: World, grantee: str, purpose: int, at_block: int | None) -> set[uuid.UUID]:
    consents = rule.covering_consents(grantee_address=grantee, purpose=purpose, at_block=at_block)
    records = Record.objects.filter(patient_address__in=list(world.records))
    return set(records.filter(rule.covered_records(consents, records=records)).values_list("pk", flat=True))


def _assert_forms_agree(world: World, ref: Reference, *, chain: DeployedContracts | None = None) -> None:
    moments: list[int | None] = [None, *sorted(set(world.blocks))]
    for at_block in moments:
        moment = (
            int(timezone.now().timestamp())
            if at_block is None
            else int(rule.block_time(at_block).timestamp())
        )
        for grantee in world.grantees:
            for purpose in (0, 1):
                listed = _queryset_answers(world, grantee, purpose, at_block)
                for patient, records in world.records.items():
                    for record in records:
                        single = rule.check(
                            patient_address=patient,
                            grantee_address=grantee,
                            purpose=purpose,
                            record_id=record.id,
                            category=record.category,
                            at_block=at_block,
                        )
                        expected = ref.covers(patient, grantee, purpose, record, at_block, moment)
                        where = (patient, grantee, purpose, record.category, at_block)
                        assert single.allowed == expected, (where, single)
                        assert (record.id in listed) == expected, where
                        if chain is not None and at_block is not None:
                            onchain = chain.registry.functions.isAllowed(
                                patient,
                                grantee,
                                scope_hash(f"record:{record.id}"),
                                scope_hash(f"category:{record.category}"),
                                purpose,
                            ).call(block_identifier=at_block)
                            assert onchain == expected, ("chain", where)


def _address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=histories)
def test_single_check_queryset_form_and_reference_agree(
    chain: DeployedContracts, chain_clock: ChainClock, ops: list[tuple]
) -> None:
    world = _world([_address(), _address()], [_address(), _address()])
    ref = Reference()
    world.blocks.append(_mine(chain, chain_clock).number)  # a block before anything happened
    for op in ops:
        _apply_indexed(chain, chain_clock, world, ref, op)
    _assert_forms_agree(world, ref)


def _apply_on_chain(
    chain: DeployedContracts,
    clock: ChainClock,
    world: World,
    ref: Reference,
    accounts: dict[str, LocalAccount],
    op: tuple,
) -> None:
    """One op as a patient and the relayer do it: a signed Grant or Revoke relayed through the contract."""
    kind, index, offset, _ = op
    if kind == "wait":
        world.blocks.append(_mine(chain, clock, index).number)
        return
    key = world.key(index)
    last = ref.last(key, None)
    active = last is not None and last[0] == "grant"
    if kind == "revoke" and not active:
        return
    patient = accounts[key[0]]
    version = world.versions.get(key, 0)
    relayer = chain.accounts.relayer.address
    if kind == "grant":
        expires_at = chain_now(chain.w3) + 1 + offset if offset else 0
        item = signed_grant(
            chain.registry,
            patient,
            key[1],
            scope=key[2],
            purpose=key[3],
            expires_at=expires_at,
            version=version,
        )
        receipt = transact(chain.registry.functions.grantBatch([item]), relayer)
        ref.ops.append((int(receipt["blockNumber"]), key, "grant", expires_at or None))
    else:
        item = signed_revoke(chain.registry, patient, key[1], scope=key[2], purpose=key[3], version=version)
        receipt = transact(chain.registry.functions.revokeBatch([item]), relayer)
        ref.ops.append((int(receipt["blockNumber"]), key, "revoke", None))
    world.versions[key] = version + 1
    world.blocks.append(int(receipt["blockNumber"]))


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=chain_histories)
def test_replayed_on_anvil_the_rule_agrees_with_the_contract_at_every_block(
    chain: DeployedContracts, chain_clock: ChainClock, ops: list[tuple]
) -> None:
    signers = [Account.create() for _ in range(2)]
    grantees: list[str] = [chain.accounts.doctors[0].address, chain.accounts.hospital_account.address]
    world = _world([signer.address for signer in signers], grantees)
    accounts = {signer.address: signer for signer in signers}
    ref = Reference()
    world.blocks.append(_mine(chain, chain_clock).number)
    for op in ops:
        _apply_on_chain(chain, chain_clock, world, ref, accounts, op)
    indexer.sync_chain()
    assert Consent.objects.filter(patient_address__in=list(accounts)).count() == sum(
        1 for _, _, kind, _ in ref.ops if kind == "grant"
    )
    _assert_forms_agree(world, ref, chain=chain)
