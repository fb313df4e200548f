"""Training jobs: create one, change its plan, and have each participating hospital's admin approve it.

An approval is an EIP-712 `PlanApproval` of the job's plan hash signed by the hospital admin's managed key
(unlocked by password for this one request) and relayed through the outbox, as Directory actions are (see
access/identity/directory.py); the row turns approved only when the indexer sees the `PlanApproved` event
(federated/chain_handlers.py). A changed plan has a new hash and needs every approval again.
No API views or Celery tasks yet: the next slices call these.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from access.identity.keys import unlock_managed_key
from access.models import Hospital, Role, User
from contracts import client, outbox
from contracts.messages import Domain, PlanApproval
from contracts.models import OutboxItem
from contracts.relayer_kinds import TrainingPlanApprovalItem
from federated.models import JobHospital, TrainingJob
from federated.networks import InvalidPlan, ModelSpec
from federated.plan import plan_hash
from federated.privacy import DPConfig
from federated.strategies import strategy_from_spec
from healthhash.errors import Conflict, DomainError, Forbidden, NotFound

TASKS = ("wdbc_malignancy",)  # benign/malignant from the 30 WDBC features (federated/features.py)
# A plan can change (and be approved) only before the job runs.
_PLAN_OPEN = (TrainingJob.Status.DRAFT, TrainingJob.Status.APPROVING, TrainingJob.Status.READY)


class PlanNotOpen(Conflict):
    code = "plan_not_open"


class ApprovalPending(Conflict):
    code = "approval_pending"


class AlreadyApproved(Conflict):
    code = "already_approved"


class HospitalNotActive(Conflict):
    code = "hospital_not_active"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A job's validated plan settings (what `plan_hash` covers, plus quorum and round timeout)."""

    task: str
    model_spec: dict[str, Any]
    strategy_spec: dict[str, Any]
    local_epochs: int
    batch_size: int
    lr: float
    rounds: int
    quorum: int
    round_timeout_s: int
    dp: dict[str, Any] | None

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@contextmanager
def _plan_errors() -> Iterator[None]:
    """networks/privacy raise InvalidPlan (Django-free: the hospital worker uses them): the API's 400."""
    try:
        yield
    except InvalidPlan as exc:
        raise DomainError(exc.detail, field=exc.field, code="invalid_plan") from exc


def _whole(value: Any, *, field: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DomainError(
            f"{field} must be a whole number >= {low}; got {value!r}.", field=field, code="invalid_plan"
        )
    return value


def validate_plan(
    *,
    task: str,
    model_spec: Mapping[str, Any],
    strategy_spec: Mapping[str, Any],
    local_epochs: int,
    batch_size: int,
    lr: float,
    rounds: int,
    quorum: int,
    round_timeout_s: int,
    dp: Mapping[str, Any] | None,
    hospital_count: int,
) -> Plan:
    """The plan with every member checked; DomainError (400) naming the field of the first bad one."""
    if task not in TASKS:
        raise DomainError(
            f"Unknown task {task!r}; known: {', '.join(TASKS)}.", field="task", code="invalid_plan"
        )
    with _plan_errors():
        model = ModelSpec.from_json(model_spec).as_json()
        dp_json = None if dp is None else dict(dp)
        if dp_json is not None:
            DPConfig.from_json(dp_json)
    strategy_from_spec(strategy_spec)  # InvalidStrategy is a DomainError naming `strategy.<parameter>`
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise DomainError(f"lr must be a finite number > 0; got {lr!r}.", field="lr", code="invalid_plan")
    quorum = _whole(quorum, field="quorum")
    if quorum > hospital_count:
        raise DomainError(
            f"quorum {quorum} exceeds the {hospital_count} participating hospitals.",
            field="quorum",
            code="invalid_plan",
        )
    return Plan(
        task=task,
        model_spec=model,
        strategy_spec=dict(strategy_spec),
        local_epochs=_whole(local_epochs, field="local_epochs"),
        batch_size=_whole(batch_size, field="batch_size"),
        lr=float(lr),
        rounds=_whole(rounds, field="rounds"),
        quorum=quorum,
        round_timeout_s=_whole(round_timeout_s, field="round_timeout_s"),
        dp=dp_json,
    )


def _require_job_admin(actor: User, hospital_pks: set[int], *, to: str) -> None:
    """Consortium admin, or the admin of one of the participating hospitals."""
    if actor.role == Role.CONSORTIUM_ADMIN:
        return
    if actor.role == Role.HOSPITAL_ADMIN and actor.hospital_id in hospital_pks:
        return
    raise Forbidden(f"only the consortium admin or an admin of a participating hospital may {to}")


@transaction.atomic
def create_job(
    *,
    admin: User,
    name: str,
    hospitals: Sequence[Hospital],
    model_spec: Mapping[str, Any],
    strategy_spec: Mapping[str, Any],
    local_epochs: int,
    batch_size: int,
    lr: float,
    rounds: int,
    quorum: int,
    round_timeout_s: int,
    task: str = TASKS[0],
    dp: Mapping[str, Any] | None = None,
) -> TrainingJob:
    """A draft job over `hospitals`, every approval pending."""
    unique = {hospital.pk: hospital for hospital in hospitals}
    _require_job_admin(admin, set(unique), to="create training jobs")
    if not name.strip():
        raise DomainError("A job needs a name.", field="name")
    if not unique:
        raise DomainError("A job needs at least one hospital.", field="hospitals")
    plan = validate_plan(
        task=task,
        model_spec=model_spec,
        strategy_spec=strategy_spec,
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        rounds=rounds,
        quorum=quorum,
        round_timeout_s=round_timeout_s,
        dp=dp,
        hospital_count=len(unique),
    )
    job = TrainingJob(
        job_id="0x" + secrets.token_hex(32), name=name.strip(), created_by=admin, **plan.fields()
    )
    job.plan_hash = plan_hash(job)
    job.save()
    JobHospital.objects.bulk_create([JobHospital(job=job, hospital=hospital) for hospital in unique.values()])
    return job


@transaction.atomic
def update_plan(*, job: TrainingJob, admin: User, **changes: Any) -> TrainingJob:
    """Change plan members (keywords as in `create_job`, but not name or hospitals). A new plan hash sends the
    job back to draft with every approval pending; approvals already signed for the old hash never count."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    hospital_pks = set(job.participants.values_list("hospital_id", flat=True))
    _require_job_admin(admin, hospital_pks, to="change this job's plan")
    if job.status not in _PLAN_OPEN:
        raise PlanNotOpen(f"The plan of a {job.status} job cannot change.")
    unknown = sorted(set(changes) - set(Plan.__dataclass_fields__))
    if unknown:
        raise DomainError(f"{unknown[0]!r} is not a plan member.", field=unknown[0])
    current = {name: getattr(job, name) for name in Plan.__dataclass_fields__}
    plan = validate_plan(**(current | changes), hospital_count=len(hospital_pks))
    for name, value in plan.fields().items():
        setattr(job, name, value)
    new_hash = plan_hash(job)
    if new_hash != job.plan_hash:
        job.plan_hash = new_hash
        job.status = TrainingJob.Status.DRAFT
        job.participants.update(
            approval=JobHospital.Approval.PENDING,
            approval_plan_hash="",
            outbox_item=None,
            approved_block=None,
            approved_tx="",
        )
    job.save()
    return job


# --------------------------------------------------------------------------- approvals


def _participation_of(job: TrainingJob, admin: User) -> JobHospital:
    """The row of the hospital `admin` runs; 404 when it does not take part (the job is not theirs to see)."""
    if admin.role != Role.HOSPITAL_ADMIN or admin.hospital_id is None:
        raise Forbidden("only a hospital's admin approves a training plan for it")
    row = (
        # outbox_item is nullable (a LEFT JOIN), which PostgreSQL will not lock: lock only this row.
        JobHospital.objects.select_for_update(of=("self",))
        .select_related("hospital", "outbox_item")
        .filter(job=job, hospital_id=admin.hospital_id)
        .first()
    )
    if row is None or row.hospital.admin_id != admin.pk:
        raise NotFound("No such training job.", code="unknown_job")
    return row


def _mark_failed_if_relay_failed(row: JobHospital) -> None:
    """The relayer gives up on an item without telling the apps: a queued row whose item failed is failed."""
    if row.approval == JobHospital.Approval.QUEUED and row.outbox_item is not None:
        if row.outbox_item.status == OutboxItem.Status.FAILED:
            row.approval = JobHospital.Approval.FAILED
            row.save(update_fields=["approval"])


@transaction.atomic
def approve_plan(*, job: TrainingJob, admin: User, password: str) -> OutboxItem:
    """Sign a PlanApproval of the job's current plan hash with the admin's key and queue it for the chain."""
    row = _participation_of(job, admin)
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in _PLAN_OPEN:
        raise PlanNotOpen(f"A {job.status} job takes no approvals.")
    if not row.hospital.active:
        raise HospitalNotActive(f"{row.hospital.slug} is not active in the Directory.")
    _mark_failed_if_relay_failed(row)
    if row.approval_plan_hash == job.plan_hash:
        if row.approval == JobHospital.Approval.QUEUED:
            raise ApprovalPending("This hospital's approval of the plan is still on its way to the chain.")
        if row.approval == JobHospital.Approval.APPROVED:
            raise AlreadyApproved("This hospital already approved the current plan.")
    signer = unlock_managed_key(user=admin, password=password)
    approval = PlanApproval(
        hospital_id=bytes.fromhex(row.hospital.hospital_id.removeprefix("0x")),
        job_id=bytes.fromhex(job.job_id.removeprefix("0x")),
        plan_hash=bytes.fromhex(job.plan_hash.removeprefix("0x")),
        nonce=outbox.next_nonce(
            contract_name="TrainingRegistry", kind=TrainingPlanApprovalItem.kind, signer=signer.address
        ),
        deadline=int(time.time()) + settings.CONSENT_SIGNATURE_TTL_S,
    )
    domain = Domain(client.chain_id(), client.deployment_address("TrainingRegistry"))
    signature = signer.sign_typed_data(full_message=approval.typed_data(domain)).signature
    item = outbox.enqueue(TrainingPlanApprovalItem(approval, signer.address, signature))
    row.approval = JobHospital.Approval.QUEUED
    row.approval_plan_hash = job.plan_hash
    row.outbox_item = item
    row.approved_block = None
    row.approved_tx = ""
    row.save(update_fields=["approval", "approval_plan_hash", "outbox_item", "approved_block", "approved_tx"])
    if job.status != TrainingJob.Status.APPROVING:
        job.status = TrainingJob.Status.APPROVING
        job.save(update_fields=["status"])
    return item
