"""The consent side of a rebuild from the chain (contracts/rebuild.py): what to reset before the replay
and what only the database knew, to put back after it.

The chain holds who granted what to whom, when, and when it ended; the database alone holds the
intents still on their way (pending grants and revocations in the outbox), why a change failed, the
scope text behind a record scope's hash, and the consent ids the access log names. Rows are kept
(reset, not deleted) so their ids survive; rows the replay has to create get the id derived from
(consent key, version), as every new consent does (services.consent_id_for).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from access.consent import selectors as consent_selectors
from access.consent.scopes import resolve_scope_hash, scope_hash_hex
from access.consent.services import consent_id_for
from access.models import Consent, ConsentStatus, Hospital, User
from contracts.messages import BadMessage, Grant, Revoke
from contracts.models import OutboxItem
from contracts.relayer_kinds import ConsentGrantKind, ConsentRevokeKind

# patient addresses -> (patient address, record id) of each of their records; the records app registers
# it (access must not import ehr), so a record scope seen only as a hash gets its text back.
RecordIdsSource = Callable[[list[str]], Iterable[tuple[str, uuid.UUID]]]
_record_ids_sources: list[RecordIdsSource] = []

IN_FLIGHT = (OutboxItem.Status.PENDING, OutboxItem.Status.SENT)
CHUNK = 500


def register_record_ids_source(source: RecordIdsSource) -> None:
    if source not in _record_ids_sources:
        _record_ids_sources.append(source)


def reset_for_replay(block_number: int) -> None:
    """Undo what blocks >= block_number did to consent rows, keeping every row (and so its id) and every
    pending intent; the replay then sets them again from the events."""
    consent_selectors.forget_block_times()
    Consent.objects.filter(
        ended_block__gte=block_number, status__in=[ConsentStatus.SUPERSEDED, ConsentStatus.REVOKED]
    ).update(status=ConsentStatus.ACTIVE, ended_block=None, ended_at=None, revoke_tx_hash="")
    Consent.objects.filter(granted_block__gte=block_number).update(
        status=ConsentStatus.PENDING, granted_block=None, granted_at=None, grant_tx_hash=""
    )


def reconcile_after_replay(block_number: int) -> None:
    """After the replay: drop rows the chain no longer backs, put back pending and failed intents from
    the outbox, and the scope texts of record scopes."""
    # A row with no grant on chain and no grant of ours in the outbox came from the chain only.
    Consent.objects.filter(
        status=ConsentStatus.PENDING, granted_block__isnull=True, grant_outbox__isnull=True
    ).delete()
    _restore_grant_intents()
    _restore_revoke_intents()
    _restore_mined_revokes()
    _restore_record_scopes()


def _message(item: OutboxItem, kind: type[Grant] | type[Revoke]) -> Any:
    try:
        return kind.from_message(item.payload["message"])
    except (BadMessage, KeyError, TypeError):
        return None


def _parties(patient_address: str, grantee_address: str) -> dict[str, Any]:
    patient = User.objects.filter(eth_address=patient_address).first()
    grantee_user = User.objects.filter(eth_address=grantee_address).first()
    hospital = (
        grantee_user.hospital
        if grantee_user is not None
        else Hospital.objects.filter(account_address=grantee_address).first()
    )
    return {"patient": patient, "grantee_user": grantee_user, "grantee_hospital": hospital}


def _restore_grant_intents() -> None:
    """Each grant of ours gets its row back (pending, failed with its reason) and each mined one its
    link and scope text, read from the outbox item that carries the signed Grant."""
    rows = {(row.consent_key, row.version): row for row in Consent.objects.all()}
    needing = sorted(
        f"{ConsentGrantKind.name}:{row.consent_key}:{row.version}"
        for row in rows.values()
        if not row.scope or row.grant_outbox_id is None or row.status == ConsentStatus.PENDING
    )
    grants = OutboxItem.objects.filter(kind=ConsentGrantKind.name)
    items = {item.pk: item for item in grants.filter(status__in=[*IN_FLIGHT, OutboxItem.Status.FAILED])}
    for start in range(0, len(needing), CHUNK):  # IN lists stay within the database's parameter limit
        items.update(
            (item.pk, item) for item in grants.filter(idempotency_key__in=needing[start : start + CHUNK])
        )
    for item in items.values():
        grant = _message(item, Grant)
        if grant is None:
            continue
        row = rows.get((grant.consent_key, grant.version))
        if row is None:
            if item.status != OutboxItem.Status.CONFIRMED:
                _create_intent_row(item, grant)
            continue
        _attach_grant(row, item, grant)


def _attach_grant(row: Consent, item: OutboxItem, grant: Grant) -> None:
    fields: dict[str, Any] = {}
    if row.grant_outbox_id is None:
        fields["grant_outbox"] = item
    if not row.scope:
        fields["scope"] = grant.scope
    if row.status == ConsentStatus.PENDING and item.status == OutboxItem.Status.FAILED:
        fields.update(status=ConsentStatus.FAILED, failure_reason=(item.error_code or "failed")[:64])
    if fields:
        Consent.objects.filter(pk=row.pk).update(**fields)


def _create_intent_row(item: OutboxItem, grant: Grant) -> None:
    failed = item.status == OutboxItem.Status.FAILED
    Consent.objects.create(
        id=consent_id_for(consent_key=grant.consent_key, version=grant.version),
        consent_key=grant.consent_key,
        version=grant.version,
        patient_address=grant.patient,
        grantee_address=grant.grantee,
        scope=grant.scope,
        scope_hash=scope_hash_hex(grant.scope),
        purpose=grant.purpose,
        expires_at=dt.datetime.fromtimestamp(grant.expires_at, tz=dt.UTC) if grant.expires_at else None,
        status=ConsentStatus.FAILED if failed else ConsentStatus.PENDING,
        failure_reason=(item.error_code or "failed")[:64] if failed else "",
        grant_outbox=item,
        created_at=item.created_at,
        **_parties(grant.patient, grant.grantee),
    )


def _restore_revoke_intents() -> None:
    """A signed revocation not yet mined (or failed) goes back on the active row it revokes: until it
    is mined, the consent answers denied, as before the rebuild."""
    linked = set(Consent.objects.exclude(revoke_outbox=None).values_list("revoke_outbox_id", flat=True))
    items = OutboxItem.objects.filter(
        kind=ConsentRevokeKind.name, status__in=[*IN_FLIGHT, OutboxItem.Status.FAILED]
    ).exclude(pk__in=linked)
    for item in items:
        revoke = _message(item, Revoke)
        if revoke is None:
            continue
        failed = item.status == OutboxItem.Status.FAILED
        Consent.objects.filter(consent_key=revoke.consent_key, status=ConsentStatus.ACTIVE).update(
            revoke_version=revoke.version,
            revoke_outbox=item,
            revoke_requested_at=item.created_at,
            revoke_failure_reason=(item.error_code or "failed")[:64] if failed else "",
        )


def _restore_mined_revokes() -> None:
    """A revocation of ours that was mined gets its link to the outbox item back (the replay set the
    version from the chain's event)."""
    rows = Consent.objects.filter(
        status=ConsentStatus.REVOKED, revoke_outbox=None, revoke_version__isnull=False
    ).values_list("pk", "consent_key", "revoke_version")
    by_key = {f"{ConsentRevokeKind.name}:{key}:{version}": pk for pk, key, version in rows}
    keys = sorted(by_key)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        for item in OutboxItem.objects.filter(idempotency_key__in=chunk):
            Consent.objects.filter(pk=by_key[item.idempotency_key]).update(
                revoke_outbox=item, revoke_requested_at=item.created_at
            )


def _restore_record_scopes() -> None:
    """Scope texts the chain shows only as hashes: known names first, then the patients' record ids."""
    unknown: dict[str, dict[str, list[uuid.UUID]]] = defaultdict(lambda: defaultdict(list))
    for pk, patient, scope_hash in Consent.objects.filter(scope="").values_list(
        "pk", "patient_address", "scope_hash"
    ):
        text = resolve_scope_hash(scope_hash)
        if text:
            Consent.objects.filter(pk=pk).update(scope=text)
        else:
            unknown[patient][scope_hash].append(pk)
    if not unknown:
        return
    for source in _record_ids_sources:
        for patient, record_id in source(list(unknown)):
            text = f"record:{record_id}"
            ids = unknown.get(patient, {}).get(scope_hash_hex(text))
            if ids:
                Consent.objects.filter(pk__in=ids).update(scope=text)
