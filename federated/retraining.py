"""Retraining: a new job with the same plan and hospitals as one whose model used patients who have since
revoked their TRAINING consent.

The exclusion needs no list of its own: every round of the new job pins a block after the revocations,
and its dataset releases select through THE consent rule as of that block, so a patient whose revocation
is mined by then is in none of them. The new job is a draft: each hospital approves its plan hash again
(the job id is part of what they sign), as for any job.
"""

from __future__ import annotations

from django.db import transaction

from access.models import User
from federated import services
from federated.models import TrainingJob

_NAME_MAX = 200


@transaction.atomic
def retrain_job(*, job: TrainingJob, admin: User) -> TrainingJob:
    """A draft job copying `job`'s plan, hospitals and schedule, `retrain_of` = `job`."""
    hospitals = [row.hospital for row in job.participants.select_related("hospital")]
    suffix = " (retrain)"
    new_job = services.create_job(
        admin=admin,
        name=job.name[: _NAME_MAX - len(suffix)] + suffix,
        hospitals=hospitals,
        task=job.task,
        model_spec=job.model_spec,
        strategy_spec=job.strategy_spec,
        local_epochs=job.local_epochs,
        batch_size=job.batch_size,
        lr=job.lr,
        rounds=job.rounds,
        quorum=job.quorum,
        round_timeout_s=job.round_timeout_s,
        dp=job.dp,
    )
    new_job.retrain_of = job
    new_job.schedule = job.schedule
    new_job.save(update_fields=["retrain_of", "schedule"])
    return new_job
