"""One round at the hospital worker, as plain functions (DESIGN14 steps 2 to 5).

1. The plan: its document must hash to the task's plan hash (else refusal `plan_mismatch`), be a plan
   this worker can run (`plan_unsupported`), and be the plan the hospital approved for the job on chain
   (`plan_not_approved`): the check is here, at the data holder, not only at the coordinator.
2. The data: the round's dataset release from the API, opened with the hospital key through the
   process's DatasetCache (a job's records are read and decrypted once), split deterministically per
   patient into training and validation rows. No complete row: refusal `no_consented_records` (the
   server records the hospital as sitting the round out).
3. Round 0 (moments): the training rows' FeatureMoments go back, nothing else.
4. Rounds 1..N (train): the global weights from the store (SHA-256 checked against the task's), their
   metrics on the validation rows, DP accounting around local training (the ledger's reserve, commit,
   or release; a round over budget is refused with its reason), the new weights to the store, an
   EIP-712 Update signed with the hospital key, and the update with patients, metrics, ε and timings.

A refusal is posted to the API and ends the task. Transient failures (API, chain or store down) raise
and the task retries; the server's answers make a repeat harmless (the same update again is a
"duplicate", another one for a taken round a 409 `update_conflict`, a release for a round already
answered is refused): all of them end the task as done.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from contracts.messages import Update
from ehr.storage import StorageError
from ehr.storage.unixfs import parse_cid
from federated import patient_set, weights_format
from federated.dataset import DeltaUnusable, LocalDataset
from federated.local_training import LocalResult, round_seed, train_locally
from federated.metrics import SplitMetrics, evaluate, validation_split
from federated.networks import FeatureMoments, InvalidPlan, load_model
from federated.plan import FEATURE_EXTRACTION_VERSION, PLAN_FORMAT, canonical_json
from federated.privacy import DPConfig, DPRound, PrivacyRefused, plan_dp_round
from federated.release_format import ReleaseBroken
from federated.worker.client import ApiRefused, ReleaseAnswer
from federated.worker.round_task import (
    TRANSIENT_ERRORS,
    BadTask,
    Reason,
    Refused,
    RoundOutcome,
    RoundTask,
    StoreDown,
)
from federated.worker.runtime import HospitalWorker

log = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.2
MAX_DETAIL_CHARS = 2000  # what the server keeps of a refusal's detail
# Not the worker's fault: the task retries (transient) or ends as the server says (refused).
_PASSED_ON: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, ApiRefused)


@dataclass(frozen=True)
class RoundData:
    dataset: LocalDataset
    X_train: Tensor
    y_train: Tensor
    train_patients: tuple[str, ...]
    X_validation: Tensor
    y_validation: Tensor
    timings: dict[str, float]


def run_round(task: RoundTask, worker: HospitalWorker) -> RoundOutcome:
    """The whole round at this hospital. Raises one of TRANSIENT_ERRORS when a retry may cure it."""
    if task.hospital_id != worker.hospital_id:
        raise BadTask(f"task for hospital {task.hospital_id} reached the worker of {worker.hospital_id}")
    if time.time() > task.deadline:
        return RoundOutcome(status="expired", detail=f"the round's deadline {task.deadline} has passed")
    try:
        try:
            check_plan(task, worker)
            data = load_round_data(task, worker)
            if task.kind == "moments":
                return send_moments(task, worker, data)
            return train_and_submit(task, worker, data)
        except Refused as refusal:
            return refuse(task, worker, refusal)
        except _PASSED_ON:
            raise
        except Exception as exc:
            # A fault of this worker (a bug, memory): a retry would fail alike, and the coordinator hears
            # of it now rather than at the round's timeout. The detail names the error's type, no data.
            log.exception("job %s round %s: the worker failed", task.job_id, task.round_number)
            detail = f"{type(exc).__name__} at the hospital worker (see its log)."
            return refuse(task, worker, Refused(Reason.WORKER_ERROR, detail))
    except ApiRefused as refused:
        # The server's final word on this round (answered already, closed, not ours): nothing to redo.
        log.info("job %s round %s: the API refused: %s", task.job_id, task.round_number, refused)
        return RoundOutcome(status="closed", reason=refused.code, detail=refused.detail)


def check_plan(task: RoundTask, worker: HospitalWorker) -> None:
    """Step 2: the plan document is the hashed one, one this worker runs, and approved on chain."""
    computed = "0x" + hashlib.sha256(canonical_json(task.plan)).hexdigest()
    if computed != task.plan_hash:
        raise Refused(
            Reason.PLAN_MISMATCH,
            f"The plan document hashes to {computed}, not to the task's plan hash {task.plan_hash}.",
        )
    if task.plan.get("plan_format") != PLAN_FORMAT or task.plan.get("feature_extraction") != (
        FEATURE_EXTRACTION_VERSION
    ):
        raise Refused(
            Reason.PLAN_UNSUPPORTED,
            f"This worker runs plan format {PLAN_FORMAT} with feature extraction "
            f"{FEATURE_EXTRACTION_VERSION!r}; the plan asks for format {task.plan.get('plan_format')!r} "
            f"with {task.plan.get('feature_extraction')!r}.",
        )
    approved = worker.registry.approved_plan_of(hospital_id=task.hospital_id, job_id=task.job_id)
    if approved != task.plan_hash:
        shown = "no plan" if int(approved, 16) == 0 else f"plan {approved}"
        raise Refused(
            Reason.PLAN_NOT_APPROVED,
            f"On chain, hospital {worker.slug} approved {shown} for job {task.job_id}, "
            f"not the task's plan {task.plan_hash}.",
        )


def load_round_data(task: RoundTask, worker: HospitalWorker) -> RoundData:
    """Step 3: the release, opened and featurised (cached per job), split into training and validation."""
    started = time.perf_counter()
    known_block = worker.datasets.known_block(task.job_id)
    release = worker.api.release(job_id=task.job_id, round_number=task.round_number, known_block=known_block)
    released = time.perf_counter()
    if release.pinned_block != task.pinned_block:
        raise Refused(
            Reason.RELEASE_BROKEN,
            f"The release is pinned at block {release.pinned_block}, the round at {task.pinned_block}.",
        )
    try:
        try:
            dataset = _dataset(task, worker, release)
        except DeltaUnusable as exc:  # the cache changed between asking and opening: ask for all of it
            log.info("job %s round %s: %s; asking for a full release", task.job_id, task.round_number, exc)
            release = worker.api.release(job_id=task.job_id, round_number=task.round_number)
            released = time.perf_counter()
            dataset = _dataset(task, worker, release)
    except ReleaseBroken as exc:
        raise Refused(Reason.RELEASE_BROKEN, str(exc)) from exc
    except (StorageError, OSError, sqlite3.Error) as exc:  # the whole store, not one record, failed
        raise StoreDown(f"the content store failed reading the release's records: {exc}") from exc
    timings = {"release_s": released - started, "dataset_s": time.perf_counter() - released}
    if dataset.skipped_records:
        log.warning(
            "job %s round %s: %d released records skipped (%s)",
            task.job_id,
            task.round_number,
            len(dataset.skipped_records),
            ", ".join(sorted({s.reason for s in dataset.skipped_records})),
        )
    if not dataset.patients:
        raise Refused(
            Reason.NO_CONSENTED_RECORDS,
            f"The release at block {task.pinned_block} holds {release.record_count} records of "
            f"{release.patient_count} patients and no complete row of features and label.",
        )
    train, validation = validation_split(dataset.patients, seed=task.seed, fraction=VALIDATION_FRACTION)
    if len(train) == 0:
        raise Refused(
            Reason.NO_CONSENTED_RECORDS,
            f"All {len(dataset.patients)} complete rows of the release fall in the validation split.",
        )
    return RoundData(
        dataset=dataset,
        X_train=dataset.X[train],
        y_train=dataset.y[train],
        train_patients=tuple(dataset.patients[i] for i in train.tolist()),
        X_validation=dataset.X[validation],
        y_validation=dataset.y[validation],
        timings=timings,
    )


def _dataset(task: RoundTask, worker: HospitalWorker, release: ReleaseAnswer) -> LocalDataset:
    return worker.datasets.dataset_for(
        sealed_bytes=release.sealed_bytes,
        job_key=task.job_id,
        pinned_block=task.pinned_block,
        private_key=worker.private_key,
        store=worker.store,
    )


def send_moments(task: RoundTask, worker: HospitalWorker, data: RoundData) -> RoundOutcome:
    """Round 0: the training rows' feature moments (aggregates only) go to the coordinator."""
    moments = FeatureMoments.of(data.X_train)
    worker.api.moments(job_id=task.job_id, round_number=task.round_number, moments=moments.as_json())
    return RoundOutcome(status="moments_sent", detail=f"{moments.count} rows", timings=data.timings)


def train_and_submit(task: RoundTask, worker: HospitalWorker, data: RoundData) -> RoundOutcome:
    """Rounds 1..N: evaluate the global model, train under the privacy ledger, store, sign, submit."""
    global_weights = fetch_global_weights(task, worker)
    try:
        validation = evaluate(
            load_model(spec=task.plan["model"], weights=global_weights),
            X=data.X_validation,
            y=data.y_validation,
        )
    except InvalidPlan as exc:
        raise Refused(
            Reason.GLOBAL_WEIGHTS_INVALID, f"The global weights do not fit the plan's model: {exc}"
        ) from exc
    result = train_privately(task, worker, data, global_weights)
    upload_started = time.perf_counter()
    weights_bytes = weights_format.dump(result.weights)
    cid = _store_add(worker, weights_bytes)
    update = Update(
        job_id=bytes.fromhex(task.job_id[2:]),
        round=task.round_number,
        hospital_id=bytes.fromhex(task.hospital_id[2:]),
        plan_hash=bytes.fromhex(task.plan_hash[2:]),
        weights_hash=bytes.fromhex(weights_format.sha256_hex(weights_bytes)[2:]),
        cid_digest=parse_cid(cid).digest,
        samples=result.sample_count,
        patient_root=patient_set.root_of(data.train_patients),
        pinned_block=task.pinned_block,
        deadline=task.deadline,
    )
    signature = worker.account.sign_typed_data(full_message=update.typed_data(worker.domain)).signature
    timings = data.timings | {
        "train_s": result.timings.total_s,
        "upload_s": time.perf_counter() - upload_started,
    }
    payload = {
        "update": update.message(),
        "signature": "0x" + bytes(signature).hex(),
        "cid": cid,
        "patients": list(data.train_patients),
        "metrics": json_safe(
            {
                "validation": validation.as_dict(),
                "train_loss": result.train_loss,
                "initial_loss": result.initial_loss,
            }
        ),
        "epsilon": json_safe(result.epsilon),
        "timings": timings,
    }
    answer = worker.api.submit_update(payload)
    log.info(
        "job %s round %s: update %s (%d samples, validation %s)",
        task.job_id,
        task.round_number,
        answer.outcome,
        result.sample_count,
        _short(validation),
    )
    return RoundOutcome(status=answer.outcome, epsilon=result.epsilon, timings=timings)


def fetch_global_weights(task: RoundTask, worker: HospitalWorker) -> dict[str, Tensor]:
    """The round's starting weights from the store, refused unless their SHA-256 is the task's."""
    assert task.global_weights is not None  # RoundTask.from_kwargs: a train round has them
    ref = task.global_weights
    try:
        data = worker.store.cat(ref.cid)
    except (StorageError, OSError, sqlite3.Error) as exc:
        # A CID not (yet) in this store, or a store that is down: both may be cured by waiting.
        raise StoreDown(f"the global weights {ref.cid} cannot be read: {type(exc).__name__}: {exc}") from exc
    if weights_format.sha256_hex(data) != ref.sha256:
        raise Refused(
            Reason.GLOBAL_WEIGHTS_INVALID,
            f"The bytes of {ref.cid} hash to {weights_format.sha256_hex(data)}, not to {ref.sha256}.",
        )
    try:
        return weights_format.load(data)
    except weights_format.BadWeights as exc:
        raise Refused(Reason.GLOBAL_WEIGHTS_INVALID, str(exc)) from exc


def train_privately(
    task: RoundTask, worker: HospitalWorker, data: RoundData, global_weights: Mapping[str, Tensor]
) -> LocalResult:
    """`train_locally` with the plan's settings; under DP, inside the ledger's reserve / commit / release."""
    hyper = task.plan.get("hyper_parameters")
    if not isinstance(hyper, dict) or not {"local_epochs", "batch_size", "lr"} <= set(hyper):
        raise Refused(Reason.INVALID_PLAN, "The plan lacks local_epochs, batch_size or lr.")
    dp = task.plan.get("dp")
    planned = _reserve_privacy(task, worker, dp, sample_count=len(data.train_patients), hyper=hyper)
    try:
        result = train_locally(
            model_spec=task.plan["model"],
            global_weights=global_weights,
            X=data.X_train,
            y=data.y_train,
            epochs=hyper["local_epochs"],
            batch_size=hyper["batch_size"],
            lr=hyper["lr"],
            seed=round_seed(seed=task.seed, hospital_id=task.hospital_id, round_number=task.round_number),
            proximal_mu=float(task.round_config.get("proximal_mu", 0.0)),
            dp=dp,
            optimizer=str(task.round_config.get("optimizer", "sgd")),
        )
    except BaseException as exc:
        if planned is not None:  # nothing derived from the data left the worker: un-reserve
            worker.ledger.release(key=task.ledger_key)
        if isinstance(exc, InvalidPlan):
            raise Refused(Reason.INVALID_PLAN, f"{exc.field}: {exc.detail}") from exc
        raise
    if planned is not None:
        assert result.dp is not None
        # Committed before the weights leave the worker (the ledger's protocol).
        worker.ledger.commit(key=task.ledger_key, spent=result.dp)
    return result


def _reserve_privacy(
    task: RoundTask, worker: HospitalWorker, dp: Any, *, sample_count: int, hyper: Mapping[str, Any]
) -> DPRound | None:
    if dp is None:
        return None
    try:
        planned = plan_dp_round(
            sample_count=sample_count,
            batch_size=int(hyper["batch_size"]),
            epochs=int(hyper["local_epochs"]),
            dp=DPConfig.from_json(dp),
        )
    except (InvalidPlan, KeyError, TypeError, ValueError) as exc:
        raise Refused(Reason.INVALID_PLAN, f"The plan's DP settings cannot be used: {exc}") from exc
    try:
        worker.ledger.reserve(key=task.ledger_key, planned=planned)
    except PrivacyRefused as exc:
        raise Refused(exc.reason, exc.detail, epsilon=planned.epsilon) from exc
    return planned


def refuse(task: RoundTask, worker: HospitalWorker, refusal: Refused) -> RoundOutcome:
    """Tell the coordinator this hospital does not take part in the round, and why."""
    log.warning("job %s round %s: refusing: %s", task.job_id, task.round_number, refusal)
    worker.api.refuse(
        job_id=task.job_id,
        round_number=task.round_number,
        reason=refusal.reason,
        detail=refusal.detail[:MAX_DETAIL_CHARS],
    )
    return RoundOutcome(
        status="refused", reason=refusal.reason, detail=refusal.detail, epsilon=refusal.epsilon
    )


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as None (NaN is not JSON: an empty split's accuracy is NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _store_add(worker: HospitalWorker, data: bytes) -> str:
    try:
        return worker.store.add(data, cid_version=worker.cid_version).cid
    except (StorageError, OSError, sqlite3.Error) as exc:
        raise StoreDown(f"the content store failed to store the weights: {exc}") from exc


def _short(metrics: SplitMetrics) -> str:
    return f"n={metrics.count} f1={metrics.f1:.3f} loss={metrics.loss:.3f}"
