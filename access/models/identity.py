"""Who is who: users and their roles, hospitals, doctors, managed keys, API tokens and SIWE nonces.

`active` and `registered_block` on Hospital and Doctor mirror the on-chain Directory: they are set by
the indexer's Directory handlers, never by a request, so a row created here starts inactive.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    DOCTOR = "doctor", "Doctor"
    HOSPITAL_ADMIN = "hospital_admin", "Hospital admin"
    CONSORTIUM_ADMIN = "consortium_admin", "Consortium admin"


class KeyKind(models.TextChoices):
    MANAGED = "managed", "Managed by HealthHash"
    WALLET = "wallet", "Own wallet"


class User(AbstractUser):
    """A person using HealthHash; `eth_address` is the identity the chain knows them by."""

    role = models.CharField(max_length=32, choices=Role.choices, default=Role.PATIENT)
    # Checksummed (EIP-55). Null until the user has a key: unique allows many NULLs.
    eth_address = models.CharField(max_length=42, unique=True, null=True, blank=True)
    key_kind = models.CharField(max_length=16, choices=KeyKind.choices, blank=True, default="")
    # Set for doctors and hospital admins only.
    hospital = models.ForeignKey(
        "access.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )

    def __str__(self) -> str:
        return f"{self.username} ({self.role})"

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Hospital(models.Model):
    """A hospital of the consortium; `account_address` is its own grantee identity on chain."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # "0x" + keccak256(slug) hex: the Directory's bytes32 hospitalId.
    hospital_id = models.CharField(max_length=66, unique=True)
    account_address = models.CharField(max_length=42, unique=True)
    # The account's secp256k1 public key, compressed (33 bytes, hex): dataset releases are sealed to it.
    # The address is a hash of it, so it cannot be derived from the address; set with the account key.
    account_public_key = models.CharField(max_length=66, blank=True, default="")
    admin = models.ForeignKey(User, on_delete=models.PROTECT, related_name="administered_hospitals")
    active = models.BooleanField(default=False)
    registered_block = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug


class Doctor(models.Model):
    """A doctor's membership of one hospital, as registered in the Directory."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="doctor_profile")
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="doctors")
    active = models.BooleanField(default=False)
    registered_block = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user.username}@{self.hospital.slug}"


class ManagedKey(models.Model):
    """An Ethereum key HealthHash keeps for its owner, sealed under the key-encryption key ring.

    Exactly one of `user` (a person's own key) and `hospital` (the hospital account, unlocked by
    the hospital's current admin) is set. The seal's context binds that owner and the address,
    so a sealed blob copied onto another row does not open.
    """

    user = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="managed_key"
    )
    hospital = models.OneToOneField(
        Hospital, null=True, blank=True, on_delete=models.CASCADE, related_name="managed_key"
    )
    address = models.CharField(max_length=42, unique=True)
    sealed_private_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, hospital__isnull=True)
                | Q(user__isnull=True, hospital__isnull=False),
                name="managed_key_has_one_owner",
            )
        ]

    def __repr__(self) -> str:
        # The sealed bytes are not secret, but there is no reason to print them either.
        return f"<ManagedKey {self.address} user={self.user_id} hospital={self.hospital_id}>"

    def __str__(self) -> str:
        return self.address


class ApiToken(models.Model):
    """A bearer token for scripts; only its SHA-256 is stored, the plaintext is shown once.

    A token works until `expires_at` or until revoked (by its owner, or by logging out with it).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the token, so a user can tell tokens apart without the secret.
    key_prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class SiweNonce(models.Model):
    """A Sign-In with Ethereum nonce we issued; `used_at` is set once, by a conditional update."""

    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.nonce
