"""Writes of consent: prepare the payload a wallet signs, accept a signed grant or revoke, sign for
managed-key users. Each accepted change is one database transaction holding the consent row and its
outbox item together; the relayer and the indexer take it from there.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from access.consent.payloads import (
    new_deadline,
    registry_domain,
    verify_signed_grant,
    verify_signed_revoke,
)
from access.consent.scopes import check_scope_belongs_to, parse_scope, scope_hash_hex
from access.identity.keys import unlock_managed_key
from access.identity.users import address_of
from access.models import Consent, ConsentStatus, Doctor, Hospital, Purpose, Role, User
from contracts import outbox
from contracts.messages import Domain, Grant, Revoke
from contracts.models import OutboxItem
from contracts.relayer_kinds import ConsentGrantItem, ConsentRevokeItem
from contracts.typed_data import consent_id as chain_consent_id
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound


class GranteeNotRegistered(DomainError):
    code = "grantee_not_registered"


class BadConsentTerms(DomainError):
    code = "bad_terms"


@dataclass(frozen=True)
class Grantee:
    address: str
    user: User | None
    hospital: Hospital | None


def resolve_grantee(address: str, *, field: str = "grantee") -> Grantee:
    """An active doctor of an active hospital, or an active hospital account, as indexed from the chain."""
    doctor = (
        Doctor.objects.select_related("user", "hospital").filter(user__eth_address__iexact=address).first()
    )
    if doctor is not None:
        if doctor.active and doctor.hospital.active:
            return Grantee(address_of(doctor.user), doctor.user, doctor.hospital)
        raise GranteeNotRegistered(f"doctor {address} is not active at a registered hospital", field=field)
    hospital = Hospital.objects.filter(account_address__iexact=address).first()
    if hospital is not None:
        if hospital.active:
            return Grantee(hospital.account_address, None, hospital)
        raise GranteeNotRegistered(f"hospital {hospital.slug} is deactivated", field=field)
    raise GranteeNotRegistered(f"{address} is not a registered doctor or hospital", field=field)


def parse_purpose(value: object, *, field: str = "purpose") -> int:
    if isinstance(value, str) and value.upper() in Purpose.names:
        return Purpose[value.upper()].value
    if isinstance(value, int) and not isinstance(value, bool) and value in Purpose.values:
        return value
    raise BadConsentTerms(f"purpose must be one of {', '.join(Purpose.names)}", field=field)


# Consent ids are derived from what the chain holds (consent key and version), so a rebuild of the
# index from the chain gives every consent back the id the access log's legal bases name.
CONSENT_ID_NAMESPACE = uuid.UUID("6f1d7c1e-8a52-4c4b-9d0e-3c1f2b7a9e10")


def consent_id_for(*, consent_key: str, version: int) -> uuid.UUID:
    """The id of the consent row for (consent key, version): the same whichever path creates it."""
    return uuid.uuid5(CONSENT_ID_NAMESPACE, f"{consent_key.lower()}:{int(version)}")


def consent_key_of(*, patient: str, grantee: str, scope: str, purpose: int) -> str:
    return "0x" + chain_consent_id(patient, grantee, bytes.fromhex(scope_hash_hex(scope)[2:]), purpose).hex()


def require_patient(user: User) -> str:
    """`user`'s chain address, if they are a patient with one; else 403."""
    if user.role != Role.PATIENT or not user.eth_address:
        raise Forbidden("only patients give or revoke consent")
    return user.eth_address


def _expected_version(rows: list[Consent], *, submitted: int | None = None) -> int:
    """The version the chain expects next for a consent key, given its indexed rows.

    Refuses while an earlier change is still on its way to the chain (its version would collide), and
    refuses a `submitted` version that was already used (a replayed signature).
    """
    # A failed grant never reached the chain, so its version is free again: submitting it anew retries it.
    if submitted is not None and any(
        row.version == submitted and row.status != ConsentStatus.FAILED for row in rows
    ):
        raise Conflict("this signed grant was already submitted", code="replayed")
    rows = [row for row in rows if row.status != ConsentStatus.FAILED]
    if any(row.status == ConsentStatus.PENDING or row.revocation_pending for row in rows):
        raise Conflict(
            "a change to this consent is still waiting for the chain; try again when it is mined",
            code="change_pending",
        )
    version = 0
    for row in rows:
        version = max(version, row.version + 1)
        if row.status == ConsentStatus.REVOKED and row.revoke_version is not None:
            version = max(version, row.revoke_version + 1)
    return version


def _next_version(consent_key: str) -> int:
    return _expected_version(list(Consent.objects.filter(consent_key=consent_key)))


def _require_version(checked: CheckedGrant, rows: list[Consent]) -> None:
    expected = _expected_version(rows, submitted=checked.grant.version)
    if checked.grant.version != expected:
        raise Conflict(
            "the consent changed since this payload was prepared "
            f"(version {checked.grant.version}, expected {expected})",
            code="stale_version",
        )


def _expiry_seconds(expires_at: dt.datetime | None) -> int:
    if expires_at is None:
        return 0
    if expires_at <= timezone.now():
        raise BadConsentTerms("expires_at must be in the future", field="expires_at", code="bad_expiry")
    return int(expires_at.timestamp())


def prepare_grant(
    *, patient: User, grantee: str, scope: str, purpose: object, expires_at: dt.datetime | None
) -> dict[str, Any]:
    """The EIP-712 Grant a wallet signs with eth_signTypedData_v4, checked as if it were submitted."""
    patient_address = require_patient(patient)
    who = resolve_grantee(grantee)
    parsed = parse_scope(scope)
    check_scope_belongs_to(parsed, patient_address=patient_address)
    purpose_value = parse_purpose(purpose)
    key = consent_key_of(
        patient=patient_address, grantee=who.address, scope=str(parsed), purpose=purpose_value
    )
    grant = Grant(
        patient=patient_address,
        grantee=who.address,
        scope=str(parsed),
        purpose=purpose_value,
        expires_at=_expiry_seconds(expires_at),
        version=_next_version(key),
        deadline=new_deadline(),
    )
    return grant.typed_data(registry_domain())


def prepare_revoke(*, patient: User, consent: Consent) -> dict[str, Any]:
    """The EIP-712 Revoke of `consent` its patient signs: by wallet (eth_signTypedData_v4) or, in
    `revoke_with_managed_key`, by the managed key. Refused as `submit_signed_revoke` would refuse it."""
    require_patient(patient)
    _check_revocable(patient=patient, consent=consent)
    revoke = Revoke(
        patient=consent.patient_address,
        grantee=consent.grantee_address,
        scope=consent.scope,
        purpose=consent.purpose,
        version=_next_version(consent.consent_key),
        deadline=new_deadline(),
    )
    return revoke.typed_data(registry_domain())


@dataclass(frozen=True)
class CheckedGrant:
    """A signed Grant that passed every check that does not depend on other pending changes."""

    patient: User
    grant: Grant
    grantee: Grantee
    signature: str

    @property
    def key(self) -> str:
        return self.grant.consent_key


@dataclass(frozen=True)
class SignedGrant:
    patient: User
    typed_data: object
    signature: object


def check_signed_grant(
    *,
    patient: User,
    typed_data: object,
    signature: object,
    grantees: dict[str, Grantee] | None = None,
    domain: Domain | None = None,
) -> CheckedGrant:
    """Signature, domain, deadline, signer = the submitting patient, grantee, scope, purpose, expiry.

    `grantees` and `domain` let a batch resolve each grantee and the registry address once.
    """
    require_patient(patient)
    grant = verify_signed_grant(typed_data, signature, domain=domain)
    if grant.patient != patient.eth_address:
        raise Forbidden("you can only submit consents for your own chart", field="typed_data.message.patient")
    who = (grantees or {}).get(grant.grantee) or resolve_grantee(
        grant.grantee, field="typed_data.message.grantee"
    )
    if grantees is not None:
        grantees[grant.grantee] = who
    parsed = parse_scope(grant.scope, field="typed_data.message.scope")
    if str(parsed) != grant.scope:
        raise BadConsentTerms("scope is not in canonical form", field="typed_data.message.scope")
    check_scope_belongs_to(parsed, patient_address=patient.eth_address, field="typed_data.message.scope")
    parse_purpose(grant.purpose, field="typed_data.message.purpose")
    if grant.expires_at and grant.expires_at <= int(timezone.now().timestamp()):
        raise BadConsentTerms(
            "expiresAt is in the past", field="typed_data.message.expiresAt", code="bad_expiry"
        )
    return CheckedGrant(patient, grant, who, _hex(signature))


def submit_signed_grant(*, patient: User, typed_data: object, signature: object) -> Consent:
    """Verify a signed Grant off chain, then store it as pending with its outbox item (one transaction)."""
    checked = check_signed_grant(patient=patient, typed_data=typed_data, signature=signature)
    with transaction.atomic():  # after the signature check, as in submit_signed_grants
        _require_version(checked, list(Consent.objects.filter(consent_key=checked.key)))
        return _store_pending_grants([checked])[0]


def submit_signed_grants(*, grants: list[SignedGrant]) -> list[Consent | DomainError]:
    """Many signed grants in one transaction, each checked exactly as `submit_signed_grant` checks it.

    A bad item comes back as its error, in its place; the good ones are stored. Lookups are batched
    (one query for all grantees seen, one for all consent keys), which is what makes a batch of
    signed requests several times cheaper per item than one request each.
    """
    grantees: dict[str, Grantee] = {}
    domain = registry_domain()
    results: list[CheckedGrant | DomainError] = []
    # Signatures are checked before the transaction: on SQLite it holds the one write lock, which
    # the relayer needs meanwhile (checking 100 signatures takes longer than storing them).
    for grant in grants:
        try:
            results.append(check_signed_grant(grantees=grantees, domain=domain, **grant.__dict__))
        except DomainError as exc:
            results.append(exc)
    with transaction.atomic():
        return _store_checked_grants(results)


def _store_checked_grants(results: list[CheckedGrant | DomainError]) -> list[Consent | DomainError]:
    """Version checks against the stored rows, then the pending rows; inside the caller's transaction."""
    keys = {item.key for item in results if isinstance(item, CheckedGrant)}
    rows_by_key: dict[str, list[Consent]] = {}
    for row in Consent.objects.filter(consent_key__in=keys):
        rows_by_key.setdefault(row.consent_key, []).append(row)
    accepted: list[CheckedGrant] = []
    for index, item in enumerate(results):
        if not isinstance(item, CheckedGrant):
            continue
        try:
            _require_version(item, rows_by_key.get(item.key, []))
        except DomainError as exc:
            results[index] = exc
            continue
        accepted.append(item)
        # A second change of the same key in this batch must wait for the first, as across requests.
        rows_by_key.setdefault(item.key, []).append(
            Consent(status=ConsentStatus.PENDING, version=item.grant.version)
        )
    stored = iter(_store_pending_grants(accepted))
    return [next(stored) if isinstance(item, CheckedGrant) else item for item in results]


def _store_pending_grants(checked: list[CheckedGrant]) -> list[Consent]:
    """The pending consent rows and their outbox items, in bulk, inside the caller's transaction.

    A grant of a (key, version) whose earlier grant failed is a retry: that row and its outbox item are
    queued again with the new signature and terms."""
    failed = {
        (row.consent_key, row.version): row
        for row in Consent.objects.filter(
            consent_key__in={c.key for c in checked}, status=ConsentStatus.FAILED
        ).select_for_update()
    }
    retried = {
        id(c): _retry_failed_grant(c, failed[(c.key, c.grant.version)])
        for c in checked
        if (c.key, c.grant.version) in failed
    }
    fresh = iter(_store_new_grants([c for c in checked if id(c) not in retried]))
    return [retried[id(c)] if id(c) in retried else next(fresh) for c in checked]


def _retry_failed_grant(checked: CheckedGrant, row: Consent) -> Consent:
    item = outbox.enqueue(ConsentGrantItem(checked.grant, checked.signature))
    if item.status != OutboxItem.Status.PENDING:
        raise Conflict("this signed grant was already submitted", code="replayed")
    row.grant_outbox = item
    row.status, row.failure_reason = ConsentStatus.PENDING, ""
    row.grantee_user, row.grantee_hospital = checked.grantee.user, checked.grantee.hospital
    row.expires_at = _expires_at(checked.grant)
    row.save(
        update_fields=[
            "grant_outbox",
            "status",
            "failure_reason",
            "grantee_user",
            "grantee_hospital",
            "expires_at",
        ]
    )
    return row


def _expires_at(grant: Grant) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(grant.expires_at, tz=dt.UTC) if grant.expires_at else None


def _store_new_grants(checked: list[CheckedGrant]) -> list[Consent]:
    items = outbox.enqueue_many(ConsentGrantItem(c.grant, c.signature) for c in checked)
    consents = [
        Consent(
            id=consent_id_for(consent_key=c.key, version=c.grant.version),
            grant_outbox=item,
            consent_key=c.key,
            patient=c.patient,
            patient_address=c.grant.patient,
            grantee_address=c.grantee.address,
            grantee_user=c.grantee.user,
            grantee_hospital=c.grantee.hospital,
            scope=c.grant.scope,
            scope_hash="0x" + c.grant.scope_hash.hex(),
            purpose=c.grant.purpose,
            expires_at=_expires_at(c.grant),
            version=c.grant.version,
        )
        for c, item in zip(checked, items, strict=True)
    ]
    return Consent.objects.bulk_create(consents, batch_size=500)


def _check_revocable(*, patient: User, consent: Consent) -> None:
    if consent.patient_id != patient.id:
        raise NotFound("Not found.")
    if consent.status == ConsentStatus.PENDING:
        raise Conflict("this consent is not on chain yet; revoke it once it is active", code="not_active")
    if consent.status != ConsentStatus.ACTIVE:
        raise Conflict(f"this consent is already {consent.status}", code="not_active")
    if not consent.scope:
        raise Conflict(
            "this consent's scope is unknown here; revoke it directly on chain", code="unknown_scope"
        )


@transaction.atomic
def submit_signed_revoke(
    *, patient: User, consent: Consent, typed_data: object, signature: object
) -> Consent:
    require_patient(patient)
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    _check_revocable(patient=patient, consent=consent)
    revoke = verify_signed_revoke(typed_data, signature)
    signed_for = (revoke.patient, revoke.grantee, revoke.scope, revoke.purpose)
    if signed_for != (consent.patient_address, consent.grantee_address, consent.scope, consent.purpose):
        raise BadConsentTerms("the signed Revoke names another consent", field="typed_data.message")
    expected = _next_version(consent.consent_key)
    if revoke.version != expected:
        raise Conflict(
            f"the consent changed since this payload was prepared "
            f"(version {revoke.version}, expected {expected})",
            code="stale_version",
        )
    consent.revoke_version = revoke.version
    consent.revoke_requested_at = timezone.now()
    consent.revoke_failure_reason = ""
    consent.revoke_outbox = outbox.enqueue(ConsentRevokeItem(revoke, _hex(signature)))
    consent.save(
        update_fields=["revoke_version", "revoke_requested_at", "revoke_failure_reason", "revoke_outbox"]
    )
    return consent


def grant_with_managed_key(
    *, patient: User, password: str, grantee: str, scope: str, purpose: object, expires_at: dt.datetime | None
) -> Consent:
    """For patients without a wallet: the server signs with their managed key, unlocked by password."""
    payload = prepare_grant(
        patient=patient, grantee=grantee, scope=scope, purpose=purpose, expires_at=expires_at
    )
    account = unlock_managed_key(user=patient, password=password)
    signature = account.sign_typed_data(full_message=payload).signature.hex()
    return submit_signed_grant(patient=patient, typed_data=payload, signature=signature)


def revoke_with_managed_key(*, patient: User, consent: Consent, password: str) -> Consent:
    payload = prepare_revoke(patient=patient, consent=consent)
    account = unlock_managed_key(user=patient, password=password)
    signature = account.sign_typed_data(full_message=payload).signature.hex()
    return submit_signed_revoke(patient=patient, consent=consent, typed_data=payload, signature=signature)


def _hex(signature: object) -> str:
    text = str(signature)
    return text if text.startswith("0x") else "0x" + text
