"""Chain I/O state: deployments per chain, the outbox and its transactions, the relayer lease and the
indexer's cursor, recent block hashes and decoded events."""

from __future__ import annotations

from django.db import models


class Deployment(models.Model):
    """Where a project contract lives on one chain, and from which sources it was built."""

    chain_id = models.BigIntegerField()
    name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    tx_hash = models.CharField(max_length=66)
    block_number = models.BigIntegerField()
    source_hash = models.CharField(max_length=66)
    # The chain's identity as seen at deployment (contracts/chain_identity.py checks it before writing):
    # a node with the same chain id but another genesis, or another block at `block_number`, is another
    # chain (a reset dev chain, a wrong ETH_RPC_URL). Blank on rows recorded before these fields existed.
    genesis_hash = models.CharField(max_length=66, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    code_hash = models.CharField(max_length=66, blank=True, help_text="keccak256 of the runtime code")
    deployed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain_id", "name"], name="deployment_one_per_chain")]

    def __str__(self) -> str:
        return f"{self.name}@{self.address} (chain {self.chain_id})"


class ChainTx(models.Model):
    """One signed transaction. Persisted (raw bytes included) BEFORE broadcast, so it can be re-sent."""

    class Status(models.TextChoices):
        SIGNED = "signed"
        CONFIRMED = "confirmed"
        FAILED = "failed"
        DROPPED = "dropped"

    chain_id = models.BigIntegerField()
    sender = models.CharField(max_length=42)
    nonce = models.BigIntegerField()
    kind = models.CharField(max_length=40)
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.BinaryField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SIGNED)
    block_number = models.BigIntegerField(null=True, blank=True)
    gas_used = models.BigIntegerField(null=True, blank=True)
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "nonce"], name="chaintx_status_idx")]

    def __str__(self) -> str:
        return f"ChainTx {self.tx_hash} nonce={self.nonce} ({self.status})"


class OutboxItem(models.Model):
    """One chain write a service asked for; committed with the service's own rows."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        CONFIRMED = "confirmed"
        FAILED = "failed"

    kind = models.CharField(max_length=40)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    chain_tx = models.ForeignKey(
        ChainTx, null=True, blank=True, on_delete=models.PROTECT, related_name="items"
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_block = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="outbox_status_idx")]

    def __str__(self) -> str:
        return f"OutboxItem {self.id} {self.kind} ({self.status})"


class RelayerState(models.Model):
    """Singleton row (pk=1): the lease that makes one relayer run at a time, and the next nonce."""

    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_nonce = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"RelayerState lease={self.lease_owner or '-'} next_nonce={self.next_nonce}"


class IndexerCursor(models.Model):
    """The indexer's progress on one chain: every log up to `last_block` has been handed out."""

    chain_id = models.BigIntegerField(unique=True)
    last_block = models.BigIntegerField()
    last_block_hash = models.CharField(max_length=66, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"IndexerCursor chain {self.chain_id} at {self.last_block}"


class IndexedBlock(models.Model):
    """Hashes of recently indexed blocks (cursor ends and blocks with events), to find a re-org's fork."""

    chain_id = models.BigIntegerField()
    number = models.BigIntegerField()
    hash = models.CharField(max_length=66)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain_id", "number"], name="indexed_block_unique")]

    def __str__(self) -> str:
        return f"block {self.number} {self.hash} (chain {self.chain_id})"


class ChainEvent(models.Model):
    """One decoded log of a project contract. Bytes are 0x-hex, addresses checksummed."""

    chain_id = models.BigIntegerField()
    contract = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    event = models.CharField(max_length=64)
    args = models.JSONField()
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    block_time = models.DateTimeField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tx_hash", "log_index"], name="chain_event_unique")]
        indexes = [
            models.Index(fields=["chain_id", "block_number", "log_index"], name="chain_event_block_idx"),
            models.Index(fields=["contract", "event"], name="chain_event_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contract}.{self.event} @{self.block_number}:{self.log_index}"
