"""Writes on identities: registering users, hospitals and doctors, issuing and revoking API tokens.

Hospitals and doctors are created here inactive; they become active when the indexer sees their
Directory registration on chain (access.consent.chain_handlers), which stays the source of truth.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from eth_utils import keccak

from access.identity import siwe
from access.identity.authentication import hash_token
from access.identity.keys import create_hospital_key, create_managed_key
from access.identity.selectors import user_by_address
from access.models import ApiToken, Doctor, Hospital, KeyKind, Role, User
from healthhash.errors import Conflict, DomainError, NotFound
from healthhash.eth_address import checksummed_address

TOKEN_PREFIX = "hh_"  # noqa: S105 - a public marker, not a secret
# Roles that belong to a hospital; the others must not carry one.
HOSPITAL_ROLES = frozenset({Role.DOCTOR, Role.HOSPITAL_ADMIN})


def hospital_id_for(slug: str) -> str:
    """The Directory's bytes32 hospitalId for a slug: "0x" + keccak256(utf-8 slug)."""
    return "0x" + keccak(text=slug).hex()


@transaction.atomic
def register_user(
    *,
    username: str,
    password: str,
    role: str,
    email: str = "",
    hospital: Hospital | None = None,
    with_managed_key: bool = True,
) -> User:
    """Create a user; a doctor given a hospital is also added to it (see `add_doctor`)."""
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.", field="role")
    if hospital is not None and role not in HOSPITAL_ROLES:
        raise DomainError(f"A {role} does not belong to a hospital.", field="hospital")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"The username {username!r} is taken.", field="username", code="username_taken")
    user = User(username=username, email=email, role=role)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="password", code="weak_password") from None
    user.set_password(password)
    user.save()
    if with_managed_key:
        create_managed_key(user=user)
    if hospital is not None and role == Role.DOCTOR:
        add_doctor(user=user, hospital=hospital)
    elif hospital is not None:
        user.hospital = hospital
        user.save(update_fields=["hospital"])
    return user


@transaction.atomic
def create_hospital(*, slug: str, name: str, admin: User) -> Hospital:
    """Create a hospital run by `admin`, with its own managed account key.

    The hospital's account (its grantee identity on chain) is a ManagedKey row owned by the
    hospital, not by the admin's user: authority follows `Hospital.admin`, so a change of admin
    needs no re-sealing. `keys.unlock_hospital_key` lets only the current admin sign with it.
    """
    if admin.role != Role.HOSPITAL_ADMIN:
        raise DomainError(f"{admin.username} is a {admin.role}, not a hospital admin.", field="admin")
    if admin.hospital_id is not None:
        raise Conflict(f"{admin.username} already runs a hospital.", field="admin", code="admin_taken")
    if Hospital.objects.filter(slug=slug).exists():
        raise Conflict(f"The hospital slug {slug!r} is taken.", field="slug", code="slug_taken")
    hospital = Hospital(slug=slug, name=name, hospital_id=hospital_id_for(slug), admin=admin)
    create_hospital_key(hospital=hospital)  # sets account_address and saves the row
    admin.hospital = hospital
    admin.save(update_fields=["hospital"])
    return hospital


@transaction.atomic
def add_doctor(*, user: User, hospital: Hospital) -> Doctor:
    """Make `user` (role doctor, with an address) a doctor of `hospital`; inactive until on chain."""
    if user.role != Role.DOCTOR:
        raise DomainError(f"{user.username} is a {user.role}, not a doctor.", field="user")
    if not user.eth_address:
        raise DomainError(f"{user.username} has no Ethereum address to register.", field="user")
    if Doctor.objects.filter(user=user).exists():
        raise Conflict(f"{user.username} is already a doctor.", field="user", code="already_doctor")
    doctor = Doctor.objects.create(user=user, hospital=hospital)
    user.hospital = hospital
    user.save(update_fields=["hospital"])
    return doctor


@transaction.atomic
def create_api_token(*, user: User, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user`: (row, plaintext). The plaintext is not stored anywhere.

    It expires after `expires_in_days`, at most (and by default) settings.API_TOKEN_TTL_DAYS.
    Callers must have re-confirmed the user (password or fresh sign-in) first: see auth_views.
    """
    days = min(expires_in_days or settings.API_TOKEN_TTL_DAYS, settings.API_TOKEN_TTL_DAYS)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=plaintext[:10],
        token_hash=hash_token(plaintext),
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token, plaintext


@transaction.atomic
def revoke_api_token(*, user: User, token_id: int) -> None:
    """Revoke one of `user`'s own live tokens; anyone else's (or a revoked one) is NotFound."""
    revoked = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not revoked:
        raise NotFound("No such token.", code="token_not_found")


@transaction.atomic
def sign_up_patient(*, username: str, password: str, email: str = "") -> User:
    """A new patient with a password and a managed key (sealed, unlocked by that password to sign).

    Patients have no Directory entry (the chain's Directory lists hospitals and doctors only), so
    nothing is relayed: the user and the key are all there is. A wallet signs up by Sign-In with
    Ethereum instead (`access.identity.siwe`).
    """
    return register_user(username=username, password=password, role=Role.PATIENT, email=email)


@transaction.atomic
def register_wallet_user(
    *, username: str, eth_address: str, role: str, password: str = "", email: str = ""
) -> User:
    """Create a user who signs with their own wallet at `eth_address`: no managed key is made.

    With a password they may also sign in by password; without one, only by Sign-In with Ethereum.
    """
    address = checksummed_address(eth_address, field="eth_address")
    if User.objects.filter(eth_address=address).exists():
        raise Conflict(
            f"The address {address} already belongs to a user.", field="eth_address", code="address_taken"
        )
    if password:
        user = register_user(
            username=username, password=password, role=role, email=email, with_managed_key=False
        )
    else:
        if role not in Role.values:
            raise DomainError(f"Unknown role {role!r}.", field="role")
        if User.objects.filter(username=username).exists():
            raise Conflict(f"The username {username!r} is taken.", field="username", code="username_taken")
        user = User(username=username, email=email, role=role)
        user.set_unusable_password()
    user.eth_address = address
    user.key_kind = KeyKind.WALLET
    user.save()
    return user


@transaction.atomic
def create_doctor_account(
    *, hospital: Hospital, username: str, password: str = "", eth_address: str = "", email: str = ""
) -> Doctor:
    """A new doctor of `hospital`, inactive until the Directory registration is mined.

    Given `eth_address`, the doctor signs with that wallet (and `password`, if any, is for signing
    in); otherwise `password` is required and a managed key is created for the doctor.
    """
    if eth_address:
        user = register_wallet_user(
            username=username, eth_address=eth_address, role=Role.DOCTOR, password=password, email=email
        )
        return add_doctor(user=user, hospital=hospital)
    if not password:
        raise DomainError(
            "A doctor needs a password (which creates a managed key) or their own wallet address.",
            field="password",
            code="required",
        )
    user = register_user(
        username=username, password=password, role=Role.DOCTOR, email=email, hospital=hospital
    )
    return user.doctor_profile


def sign_up_wallet_patient(*, message: str, signature: str, chain_id: int) -> User:
    """A new patient who signs with their own wallet, proven by a signed Sign-In with Ethereum message.

    No managed key is made and nothing is relayed (patients have no Directory entry). An address that
    already has an account is a 409, said only once the signature has proven the address is the
    caller's (so nobody learns which addresses have accounts); that caller may simply sign in.
    """
    address = siwe.parse_message(message).address
    known = user_by_address(address) is not None
    user = siwe.verify_siwe(message=message, signature=signature, chain_id=chain_id)
    if known:
        raise Conflict(
            f"{address} already has an account; sign in with it instead.",
            field="message",
            code="address_taken",
        )
    return user
