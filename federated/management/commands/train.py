"""`manage.py train --job ID [--wait]`: start a ready training job now (by the operator) and, with --wait,
follow its rounds from the database: a progress bar per round (hospitals answered), then the round's test
metrics and timings. Exits non-zero when the job fails or is cancelled.

The rounds themselves run elsewhere: the hospital workers (`manage.py hospital_worker`) train, the server's
Celery worker aggregates. This command only starts and watches.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from federated import scheduling
from federated.models import RoundUpdate, TrainingJob, TrainingRound

_BAR = 20
_ANSWERED = (
    RoundUpdate.Status.ACCEPTED,
    RoundUpdate.Status.REJECTED,
    RoundUpdate.Status.REFUSED,
    RoundUpdate.Status.SAT_OUT,
)


def _find(identifier: str) -> TrainingJob:
    text = identifier.strip().lower()
    job = (
        TrainingJob.objects.filter(job_id=text).first()
        if text.startswith("0x")
        else TrainingJob.objects.filter(pk=int(text)).first()
        if text.isdigit()
        else None
    )
    if job is None:
        raise CommandError(f"no training job {identifier!r} (give its number or its 0x job id)")
    return job


def _number(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def round_line(training_round: TrainingRound) -> str:
    """One line for a finished round: test F1 / AUROC / accuracy / loss, samples, time, who was missing."""
    name = (
        "moments" if training_round.kind == TrainingRound.Kind.MOMENTS else f"round {training_round.number}"
    )
    if training_round.status == TrainingRound.Status.FAILED:
        return f"{name}: failed: {training_round.reason}"
    metrics, timings = training_round.metrics or {}, training_round.timings or {}
    test = metrics.get("test") or {}
    samples = metrics.get("samples") or {}
    missing = metrics.get("stragglers") or []
    line = (
        f"{name}: F1 {_number(test.get('f1'))}  AUROC {_number(test.get('auroc'))}  "
        f"acc {_number(test.get('accuracy'))}  loss {_number(test.get('loss'))}  | "
        f"{len(samples)} hospitals, {sum(v or 0 for v in samples.values())} samples | "
        f"{_number(timings.get('wall_s'), '.2f')} s "
        f"(training {_number(timings.get('local_training_s'), '.2f')} s)"
    )
    return line + (f" | stragglers: {', '.join(missing)}" if missing else "")


class Command(BaseCommand):
    help = "Start a ready training job now; with --wait, follow its rounds until it ends."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--job", required=True, help="the job's number or its 0x job id")
        parser.add_argument("--wait", action="store_true", help="follow the rounds until the job ends")
        parser.add_argument(
            "--timeout", type=float, default=0.0, help="give up waiting after this many s (0: never)"
        )
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between looks at the database")

    def handle(self, *args: Any, **options: Any) -> None:
        job = _find(options["job"])
        if job.status == TrainingJob.Status.READY:
            job = scheduling.schedule_job(job=job, admin=None)
            self.stdout.write(f"job {job.pk} ({job.name}): {job.status}, schedule {job.schedule['kind']}")
        elif job.status in (TrainingJob.Status.RUNNING, TrainingJob.Status.SCHEDULED):
            self.stdout.write(f"job {job.pk} ({job.name}) is {job.status} already")
        elif job.status not in (
            TrainingJob.Status.DONE,
            TrainingJob.Status.FAILED,
            TrainingJob.Status.CANCELLED,
        ):
            raise CommandError(f"job {job.pk} is {job.status}: every hospital must approve its plan first")
        if options["wait"]:
            job = self._follow(job, timeout_s=options["timeout"], poll_s=options["poll"])
        self._finish(job)

    def _follow(self, job: TrainingJob, *, timeout_s: float, poll_s: float) -> TrainingJob:
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        reported: set[int] = set(
            job.training_rounds.exclude(
                status__in=[TrainingRound.Status.RUNNING, TrainingRound.Status.AGGREGATING]
            ).values_list("number", flat=True)
        )
        shown = ""
        while True:
            job.refresh_from_db()
            for training_round in job.training_rounds.order_by("number"):
                if training_round.number in reported:
                    continue
                if training_round.status in (TrainingRound.Status.DONE, TrainingRound.Status.FAILED):
                    self._progress("")
                    shown = ""
                    self.stdout.write(round_line(training_round))
                    reported.add(training_round.number)
                else:
                    bar = self._bar(job, training_round)
                    if bar != shown:
                        self._progress(bar)
                        shown = bar
            if job.status not in (TrainingJob.Status.RUNNING,):
                self._progress("")
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"job {job.pk} still {job.status} after {timeout_s:g} s")
            time.sleep(poll_s)

    @staticmethod
    def _bar(job: TrainingJob, training_round: TrainingRound) -> str:
        statuses = list(training_round.updates.values_list("status", flat=True))
        answered = sum(1 for status in statuses if status in _ANSWERED)
        accepted = statuses.count(RoundUpdate.Status.ACCEPTED)
        filled = round(_BAR * answered / max(len(statuses), 1))
        name = "moments" if training_round.number == 0 else f"round {training_round.number}/{job.rounds}"
        state = "aggregating" if training_round.status == TrainingRound.Status.AGGREGATING else "training"
        return (
            f"{name} [{'#' * filled}{'.' * (_BAR - filled)}] {answered}/{len(statuses)} hospitals answered, "
            f"{accepted} accepted (quorum {job.quorum}), {state}"
        )

    def _progress(self, text: str) -> None:
        """The live bar: redrawn in place on a terminal, one line per change otherwise."""
        if sys.stdout.isatty():
            self.stdout.write("\r\033[K" + text, ending="")
            self.stdout.flush()
        elif text:
            self.stdout.write(text)

    def _finish(self, job: TrainingJob) -> None:
        job.refresh_from_db()
        if job.status in (TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED):
            raise CommandError(f"job {job.pk} {job.status}: {job.failure_reason}")
        version = job.model_versions.order_by("-round").first()
        latest = f"; latest model version: round {version.round}, {version.cid}" if version else ""
        self.stdout.write(f"job {job.pk} is {job.status}{latest}")
