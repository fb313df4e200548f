"""Writes on identities: registering users, hospitals and doctors, issuing and revoking API tokens.

Hospitals and doctors are created here inactive; they become active when the indexer sees their
Directory registration on chain (access.consent.chain_handlers), which stays the source of truth.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from eth_utils import keccak

from access.identity.authentication import hash_token
from access.identity.keys import create_hospital_key, create_managed_key
from access.models import ApiToken, Doctor, Hospital, Role, User
from healthhash.errors import Conflict, DomainError, NotFound

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
def create_api_token(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`: (row, plaintext). The plaintext is not stored anywhere."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, key_prefix=plaintext[:10], token_hash=hash_token(plaintext)
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
