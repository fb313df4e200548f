"""A hospital worker process's connections and state, checked once at start and shared by its tasks.

`connect_worker` asks the API for the worker config (chain id, TrainingRegistry address, CID version and
the hospital as the server knows it) and refuses to start (`WorkerStartRefused`, with the reason) when the
key file's account is not the hospital's, or when the chain node it reads is another chain than the API's.
The process keeps one `HospitalWorker` (`install` / `current`): one DatasetCache per process, so a job's
records are decrypted once per process, and the hospital's privacy ledger under its state dir.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from contracts.messages import Domain
from contracts.typed_data import hospital_id as hospital_id_of
from ehr.storage import ContentStore, KuboStore, LocalBlockStore
from federated.dataset import DatasetCache
from federated.privacy import PrivacyLedger
from federated.worker.chain import ChainDown, TrainingRegistryReader
from federated.worker.client import ApiRefused, ApiUnavailable, WorkerApi, WorkerConfig

log = logging.getLogger(__name__)

DEFAULT_EPSILON_BUDGET = 10.0
DEFAULT_DELTA = 1e-5


class WorkerStartRefused(Exception):
    """The worker must not start: the message says why (never a key)."""


@dataclass
class HospitalWorker:
    """Everything a round needs at this hospital: identity and key, the API, the chain, the store, the
    ledger and the per-process dataset cache."""

    slug: str
    hospital_id: str  # "0x" + keccak256(slug), lower-case hex
    account: LocalAccount
    api: WorkerApi
    registry: TrainingRegistryReader
    store: ContentStore
    chain_id: int
    cid_version: int
    state_dir: Path
    ledger: PrivacyLedger
    datasets: DatasetCache = field(default_factory=DatasetCache)

    @property
    def domain(self) -> Domain:
        """The EIP-712 domain of the hospital's Update signatures."""
        return Domain(self.chain_id, self.registry.address)

    @property
    def private_key(self) -> bytes:
        return bytes(self.account.key)


def read_key_file(path: Path) -> LocalAccount:
    """The account whose private key (hex, 0x optional) the file holds; the file must be owner-only."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise WorkerStartRefused(f"cannot read the key file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WorkerStartRefused(
            f"the key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
        if len(raw) != 32:
            raise ValueError
        return Account.from_key(raw)
    except ValueError:
        raise WorkerStartRefused(f"the key file {path} does not hold a 32-byte hex private key") from None


def open_content_store(*, ipfs_api_url: str, store_dir: Path, cid_version: int) -> ContentStore:
    """Kubo at `ipfs_api_url` when set, else the local block store in `store_dir` (no ORM, no settings)."""
    if ipfs_api_url:
        return KuboStore(ipfs_api_url, cid_version=cid_version)
    return LocalBlockStore(store_dir, cid_version=cid_version)


def connect_worker(
    *,
    slug: str,
    account: LocalAccount,
    api_url: str,
    state_dir: Path,
    store_dir: Path,
    ipfs_api_url: str = "",
    epsilon_budget: float = DEFAULT_EPSILON_BUDGET,
    delta: float = DEFAULT_DELTA,
    wait_for_api_s: float = 0.0,
) -> HospitalWorker:
    """Check the worker's key, chain and API against each other and open its store and ledger."""
    hospital_id = "0x" + hospital_id_of(slug).hex()
    api = WorkerApi(api_url, account=account, hospital_id=hospital_id)
    config = _config(api, slug=slug, wait_for_api_s=wait_for_api_s)
    _check_hospital(config, slug=slug, hospital_id=hospital_id, account=account)
    if config.training_registry is None:
        raise WorkerStartRefused(f"no TrainingRegistry is deployed on the API's chain {config.chain_id}")
    registry = TrainingRegistryReader(config.training_registry)
    try:
        node_chain_id = registry.node_chain_id()
    except ChainDown as exc:
        raise WorkerStartRefused(f"the chain node does not answer: {exc}") from exc
    if node_chain_id != config.chain_id:
        raise WorkerStartRefused(
            f"the chain node answers for chain {node_chain_id}, the API runs on chain {config.chain_id}: "
            "point ETH_RPC_URL at the API's chain"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)  # the ledger and the logs of a data holder are its own
    return HospitalWorker(
        slug=slug,
        hospital_id=hospital_id,
        account=account,
        api=api,
        registry=registry,
        store=open_content_store(
            ipfs_api_url=ipfs_api_url, store_dir=store_dir, cid_version=config.cid_version
        ),
        chain_id=config.chain_id,
        cid_version=config.cid_version,
        state_dir=state_dir,
        ledger=PrivacyLedger(
            path=state_dir / f"privacy-ledger-{slug}.json",
            hospital=slug,
            epsilon_budget=epsilon_budget,
            delta=delta,
        ),
    )


def _config(api: WorkerApi, *, slug: str, wait_for_api_s: float) -> WorkerConfig:
    """The API's worker config; an API that is still starting is waited for, up to `wait_for_api_s`."""
    give_up_at = time.monotonic() + wait_for_api_s
    while True:
        try:
            return api.config(hospital_slug=slug)
        except ApiRefused as exc:
            if exc.code == "hospital_not_found":
                raise WorkerStartRefused(f"the API does not know hospital {slug!r}") from exc
            raise WorkerStartRefused(f"the API refuses the worker config: {exc}") from exc
        except ApiUnavailable as exc:
            if time.monotonic() >= give_up_at:
                raise WorkerStartRefused(str(exc)) from exc
            time.sleep(1.0)


def _check_hospital(config: WorkerConfig, *, slug: str, hospital_id: str, account: LocalAccount) -> None:
    hospital = config.hospital
    if hospital is None:
        raise WorkerStartRefused(f"the API does not know hospital {slug!r}")
    if hospital.hospital_id.lower() != hospital_id:
        raise WorkerStartRefused(
            f"the API names hospital {slug!r} by id {hospital.hospital_id}, not {hospital_id}"
        )
    if to_checksum_address(hospital.account_address) != account.address:
        raise WorkerStartRefused(
            f"the key file holds account {account.address}, but hospital {slug!r}'s account is "
            f"{to_checksum_address(hospital.account_address)}"
        )
    if not hospital.active:
        log.warning("hospital %s is not active in the Directory: its releases will be refused", slug)


def limit_torch_threads() -> None:
    """One torch thread per worker process: several workers share the machine's few cores."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel work of the process; fine then
        pass


def warm_up_torch() -> None:
    """Pay torch's one-time costs (the optimizer's first step imports torch._dynamo, ~3 s) at start, not in
    the first round: a tiny model trains one step on two random rows."""
    from federated.local_training import train_locally
    from federated.networks import N_FEATURES, initial_weights

    spec = {"name": "logistic"}
    train_locally(
        model_spec=spec,
        global_weights=initial_weights(spec=spec, seed=0),
        X=torch.zeros(2, N_FEATURES),
        y=torch.tensor([0, 1]),
        epochs=1,
        batch_size=2,
        lr=0.1,
        seed=0,
    )


_current: HospitalWorker | None = None


def install(worker: HospitalWorker | None) -> None:
    """Make `worker` this process's hospital worker (prefork children inherit it); None uninstalls."""
    global _current
    _current = worker


def current() -> HospitalWorker:
    if _current is None:
        raise RuntimeError(
            "this process is not a hospital worker: start it with `manage.py hospital_worker --hospital SLUG`"
        )
    return _current
