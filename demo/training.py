"""The demo's training chapter: patients consent to TRAINING at their hospital, the three hospital admins
approve a plan, one `hospital_worker` per hospital trains on its own queue, and the rounds print as they
finish. Midway one patient revokes her TRAINING consent; the next round that pins a later block trains on
one patient fewer. The metrics per round go to a PNG under var/.

Everything runs as in production, only on one machine: the API serves the workers (release, updates), the
Celery worker beside it coordinates the rounds, and each hospital worker is its own process with its own
key file and no database credentials.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from eth_account import Account

from access.consent import services as consent_services
from access.models import Consent, ConsentStatus, Hospital, Purpose, User
from contracts import client
from contracts.drain import drain_outbox
from demo.people import DemoWorld, table_patient_key
from federated import rounds, services
from federated.models import JobHospital, RoundUpdate, TrainingJob, TrainingRound, UpdatePatient

Say = Callable[[str], None]
ROUNDS = 6
REVOKE_AFTER_ROUND = 2
HOSPITAL_KEYS_DIR = "hospital-keys"


# --------------------------------------------------------------------------- consents


def grant_training_consents(world: DemoWorld, patients: list[User]) -> int:
    """Each table patient consents to TRAINING on her whole chart by her hospital (patient i at hospital
    i mod n, as the charts were written). Signed with the patient's key as a wallet would, submitted in one
    batch; patients who already hold such a consent are skipped. Returns how many were queued."""
    hospitals = world.hospitals
    wanted: list[tuple[User, Hospital]] = [
        (patient, hospitals[index % len(hospitals)])
        for index, patient in enumerate(patients)
        if patient.username.startswith("wdbc-")
    ]
    held = set(
        Consent.objects.filter(
            purpose=Purpose.TRAINING,
            status__in=[ConsentStatus.PENDING, ConsentStatus.ACTIVE],
            patient_address__in=[p.eth_address for p, _ in wanted],
        ).values_list("patient_address", "grantee_address")
    )
    signed = []
    for patient, hospital in wanted:
        if (patient.eth_address, hospital.account_address) in held:
            continue
        key = table_patient_key(patient.username)
        if Account.from_key(key).address != patient.eth_address:
            continue  # made before the demo derived table keys: it cannot sign for this patient
        typed_data = consent_services.prepare_grant(
            patient=patient,
            grantee=hospital.account_address,
            scope="chart",
            purpose=Purpose.TRAINING.label,
            expires_at=None,
        )
        signature = Account.sign_typed_data(key, full_message=typed_data).signature.hex()
        signed.append(
            consent_services.SignedGrant(patient=patient, typed_data=typed_data, signature=signature)
        )
    results = consent_services.submit_signed_grants(grants=signed)
    return sum(1 for result in results if isinstance(result, Consent))


# --------------------------------------------------------------------------- processes


def hospital_key_file(hospital: Hospital) -> Path:
    return settings.SECRETS_DIR / HOSPITAL_KEYS_DIR / f"{hospital.slug}.key"


def export_hospital_keys(world: DemoWorld) -> None:
    """Each hospital admin exports the hospital's key for its worker, once (var/secrets, mode 0600)."""
    password_file = settings.SECRETS_DIR / "demo_password"
    for hospital in world.hospitals:
        path = hospital_key_file(hospital)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            call_command(
                "export_hospital_key",
                hospital=hospital.slug,
                out=str(path),
                password_file=str(password_file),
                stdout=io.StringIO(),  # it names the file; the chapter says where the keys are
            )


@contextmanager
def hospital_workers(world: DemoWorld, *, api_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One `manage.py hospital_worker` per hospital, each a process of its own, stopped on the way out.

    Each gets a state folder of its own (its privacy ledger; the settings' own throwaway secrets), the
    broker, the chain and the content store by name, and no database credentials (DATABASE_URL points at
    nothing) and no KEK: the server's secrets folder is not theirs."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "HEALTHHASH_KEK", "RELAYER_PRIVATE_KEY", "HEALTHHASH_VAR_DIR")
    }
    env["DATABASE_URL"] = "postgres://no-database-for-hospital-workers@127.0.0.1:9/none"
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["ETH_RPC_URL"] = client.rpc_url()
    log_dir = settings.VAR_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        processes = []
        for hospital in world.hospitals:
            log = stack.enter_context((log_dir / f"hospital-worker-{hospital.slug}.log").open("ab"))
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    sys.executable,
                    str(settings.BASE_DIR / "manage.py"),
                    "hospital_worker",
                    "--hospital",
                    hospital.slug,
                    "--key-file",
                    str(hospital_key_file(hospital)),
                    "--api-url",
                    api_url,
                    # the local store stands in for the consortium's Kubo node (IPFS_API_URL)
                    "--store-dir",
                    str(settings.IPFS_LOCAL_DIR),
                ],
                env=env | {"HEALTHHASH_VAR_DIR": str(settings.VAR_DIR / "hospital-workers" / hospital.slug)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            processes.append(process)
            stack.callback(_stop, process)
        yield processes


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


# --------------------------------------------------------------------------- the job


def create_approved_job(
    world: DemoWorld,
    *,
    name: str = "Malignancy (WDBC), FedAvg over three hospitals",
    rounds: int = ROUNDS,
    local_epochs: int = 2,
    round_timeout_s: int = 60,
) -> TrainingJob:
    """A FedAvg job over every hospital of the world (quorum: all), approved on chain by each admin."""
    job = services.create_job(
        admin=world.hospitals[0].admin,
        name=name,
        hospitals=world.hospitals,
        model_spec={"name": "logistic"},
        strategy_spec={"name": "fedavg"},
        local_epochs=local_epochs,
        batch_size=32,
        lr=0.5,
        rounds=rounds,
        quorum=len(world.hospitals),
        round_timeout_s=round_timeout_s,
    )
    for hospital in world.hospitals:
        services.approve_plan(job=job, admin=hospital.admin, password=world.password)
    drain_outbox()
    job.refresh_from_db()
    return job


def _round_line(job: TrainingJob, training_round: TrainingRound) -> str:
    test = training_round.metrics.get("test", {})
    samples = training_round.metrics.get("samples", {})
    wall = training_round.timings.get("wall_s")
    counts = " ".join(f"{slug}={n}" for slug, n in sorted(samples.items()))
    auroc = test.get("auroc")
    return (
        f"   round {training_round.number}/{job.rounds}: F1 {test.get('f1', float('nan')):.3f}  "
        f"AUROC {auroc if auroc is None else f'{auroc:.3f}'}  loss {test.get('loss', float('nan')):.3f}  "
        f"patients {sum(samples.values())} ({counts})  block {training_round.pinned_block}"
        + (f"  {wall:.2f} s" if wall is not None else "")
    )


def revoke_one(world: DemoWorld, job: TrainingJob) -> str:
    """A table patient whose records the first hospital trained on so far withdraws her TRAINING consent;
    mined before we go on. (A patient of the hospital's held-out split would change no round's count.)"""
    hospital = world.hospitals[0]
    trained_on = UpdatePatient.objects.filter(
        update__round__job=job, update__hospital=hospital, update__status=RoundUpdate.Status.ACCEPTED
    ).values("patient_address")
    consent = (
        Consent.objects.filter(
            purpose=Purpose.TRAINING,
            status=ConsentStatus.ACTIVE,
            grantee_address=hospital.account_address,
            patient_address__in=trained_on,
        )
        .order_by("patient_address")
        .first()
    )
    if consent is None:
        return "nobody to revoke"
    patient = User.objects.get(eth_address=consent.patient_address)
    typed_data = consent_services.prepare_revoke(patient=patient, consent=consent)
    key = table_patient_key(patient.username)
    signature = Account.sign_typed_data(key, full_message=typed_data).signature.hex()
    consent_services.submit_signed_revoke(
        patient=patient, consent=consent, typed_data=typed_data, signature=signature
    )
    drain_outbox()
    consent.refresh_from_db()
    return f"{patient.username} revoked TRAINING at {hospital.slug} in block {consent.ended_block}"


def run_training(world: DemoWorld, say: Say, *, api_url: str, timeout_s: float = 300.0) -> TrainingJob:
    job = create_approved_job(world)
    approvals = JobHospital.objects.filter(job=job, approval=JobHospital.Approval.APPROVED).count()
    say(f"   plan {job.plan_hash[:18]}… approved on chain by {approvals} hospital admins")
    rounds.start_job(job=job)
    told: set[int] = set()
    revoked = False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job.refresh_from_db()
        for training_round in job.training_rounds.filter(status=TrainingRound.Status.DONE).order_by("number"):
            if training_round.number in told or training_round.kind != TrainingRound.Kind.TRAIN:
                continue
            told.add(training_round.number)
            say(_round_line(job, training_round))
            if training_round.number == REVOKE_AFTER_ROUND and not revoked:
                revoked = True
                say(f"   -> {revoke_one(world, job)}; rounds pinned at or after it train without her")
        if job.status in (TrainingJob.Status.DONE, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED):
            break
        time.sleep(0.2)
    if job.status != TrainingJob.Status.DONE:
        say(f"   the job ended {job.status}: {job.failure_reason or 'timed out waiting'}")
    return job


# --------------------------------------------------------------------------- the plot


def plot_metrics(job: TrainingJob, path: Path) -> Path:
    """Test F1, AUROC and loss per round, and each hospital's validation F1, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = list(job.training_rounds.filter(kind=TrainingRound.Kind.TRAIN, status=TrainingRound.Status.DONE))
    numbers = [r.number for r in done]
    figure, (quality, per_hospital) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for name in ("f1", "auroc", "loss"):
        values: list[Any] = [r.metrics.get("test", {}).get(name) for r in done]
        quality.plot(
            numbers, [float("nan") if v is None else v for v in values], marker="o", label=f"test {name}"
        )
    quality.set_xlabel("round")
    quality.set_title("held-out test set")
    quality.legend()
    slugs = sorted({slug for r in done for slug in r.metrics.get("validation", {})})
    for slug in slugs:
        f1 = [r.metrics.get("validation", {}).get(slug, {}).get("f1") for r in done]
        per_hospital.plot(numbers, [float("nan") if v is None else v for v in f1], marker="o", label=slug)
    per_hospital.set_xlabel("round")
    per_hospital.set_title("validation F1 per hospital, of the model each round starts from")
    per_hospital.legend()
    figure.suptitle(job.name)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


# --------------------------------------------------------------------------- the chapter


def training_story(world: DemoWorld, say: Say, *, patients: list[User], api_url: str) -> TrainingJob | None:
    """Chapter 6: consents, approvals, one worker per hospital, the rounds, a revocation midway, the plot."""
    started = time.perf_counter()
    say("6. Federated training over consented records, one hospital worker per hospital")
    export_hospital_keys(world)
    # The workers boot (Django, torch) while the consents are signed and mined.
    with hospital_workers(world, api_url=api_url):
        say(
            f"   workers: {', '.join(f'hospital.{h.slug}' for h in world.hospitals)} "
            "(no database credentials, no KEK; keys in var/secrets/hospital-keys)"
        )
        queued = grant_training_consents(world, patients)
        drain_outbox()
        active = Consent.objects.filter(purpose=Purpose.TRAINING, status=ConsentStatus.ACTIVE).count()
        say(
            f"   {queued} patients granted TRAINING to their hospital now; "
            f"{active} TRAINING consents active on chain"
        )
        job = run_training(world, say, api_url=api_url)
    if job.status == TrainingJob.Status.DONE:
        latest = job.model_versions.order_by("-round").first()
        if latest is not None:
            say(
                f"   model version {latest.round}: {latest.cid[:16]}…, on chain "
                f"{latest.chain_status or 'queued'}"
                + (f" in block {latest.chain_block}" if latest.chain_block else "")
            )
    path = plot_metrics(job, settings.VAR_DIR / "training" / f"job-{job.pk}.png")
    say(f"   metrics per round plotted to {path}  ({time.perf_counter() - started:.1f} s for this chapter)")
    return job
