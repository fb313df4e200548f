"""Training API for people: jobs (hospital admins), model versions and their provenance (hospital admins),
predictions (doctors) and a patient's training use. Thin views over federated's services and selectors.

Only the admins of a job's participating hospitals see it: to anyone else every job URL answers 404
`unknown_job`, exactly as for an id no job has. Jobs are named in URLs by their on-chain id (0x + 64 hex)
or their number.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.identity.users import signed_in_user
from access.models import Hospital, Role, User
from federated import predictions, provenance, retraining, rounds, scheduling, selectors, services
from federated.api.model_serializers import (
    ModelDetailOut,
    ModelJobOut,
    ModelPage,
    PredictionOut,
    TrainingUseOut,
    VersionOut,
)
from federated.api.serializers import (
    JobCreateIn,
    JobDetailOut,
    JobOut,
    JobPage,
    PageQuery,
    PlanApprovalIn,
    PlanIn,
    PredictIn,
    StartIn,
)
from federated.models import ModelVersion, TrainingJob
from healthhash.errors import DomainError, Forbidden
from healthhash.pagination import StrictLimitOffsetPagination

JOB = OpenApiParameter(
    "job",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The job's on-chain id (0x + 64 hex) or its number.",
)
ROUND = OpenApiParameter(
    "round_number",
    OpenApiTypes.INT,
    OpenApiParameter.PATH,
    description="The round that published the version.",
)
_NOT_YOURS = OpenApiResponse(description="unknown_job: no such job, or not one of your hospital's")


def _detail(job: TrainingJob) -> dict[str, Any]:
    return JobDetailOut(selectors.job_detail(job)).data


def _hospitals_by_slug(slugs: list[str]) -> list[Hospital]:
    found = {hospital.slug: hospital for hospital in Hospital.objects.filter(slug__in=slugs)}
    for index, slug in enumerate(slugs):
        if slug not in found:
            raise DomainError(f"No hospital {slug!r}.", field=f"hospitals[{index}]", code="unknown_hospital")
    return [found[slug] for slug in slugs]


def _require_participant_admin(user: User, hospitals: list[Hospital]) -> None:
    """Jobs are created by an admin of one of their hospitals (only those admins ever see a job)."""
    if user.role != Role.HOSPITAL_ADMIN or not any(h.pk == user.hospital_id for h in hospitals):
        raise Forbidden("Only an admin of one of the job's hospitals creates a training job.")


# --------------------------------------------------------------------------- jobs


class JobListCreateView(APIView):
    @extend_schema(operation_id="training_jobs_list", parameters=[PageQuery], responses={200: JobPage})
    def get(self, request: Request) -> Response:
        """The training jobs my hospital takes part in (hospital admins; empty for everyone else), newest
        first. Paginated."""
        jobs = (
            selectors.jobs_visible_to(signed_in_user(request))
            .select_related("created_by", "retrain_of")
            .prefetch_related("participants__hospital")
        )
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(jobs, request, view=self) or []
        return paginator.get_paginated_response(JobOut(page, many=True).data)

    @extend_schema(request=JobCreateIn, responses={201: JobDetailOut})
    def post(self, request: Request) -> Response:
        """Create a draft job over the given hospitals (mine among them); each hospital's admin then
        approves its plan hash (POST .../approve)."""
        user = signed_in_user(request)
        data = JobCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        hospitals = _hospitals_by_slug(data.validated_data["hospitals"])
        _require_participant_admin(user, hospitals)
        job = services.create_job(
            admin=user, name=data.validated_data["name"], hospitals=hospitals, **data.plan_changes()
        )
        return Response(_detail(job), status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    @extend_schema(parameters=[JOB], responses={200: JobDetailOut, 404: _NOT_YOURS})
    def get(self, request: Request, job: str) -> Response:
        """The job with its participants' approvals, every round (status, pinned block, timings, metrics
        per round and hospital, sample counts, stragglers, each update's state and chain reference), its
        model versions and, if it failed, why."""
        return Response(_detail(selectors.visible_job(signed_in_user(request), job)))

    @extend_schema(parameters=[JOB], request=PlanIn, responses={200: JobDetailOut, 404: _NOT_YOURS})
    def patch(self, request: Request, job: str) -> Response:
        """Change plan members before the job runs. A changed plan hash sends it back to draft: every
        hospital approves again."""
        user = signed_in_user(request)
        found = selectors.visible_job(user, job)
        data = PlanIn(data=request.data)
        data.is_valid(raise_exception=True)
        changes = data.plan_changes()
        if not changes:
            raise DomainError("Send at least one plan member to change.", code="empty_change")
        return Response(_detail(services.update_plan(job=found, admin=user, **changes)))


class JobApproveView(APIView):
    @extend_schema(parameters=[JOB], request=PlanApprovalIn, responses={202: JobDetailOut, 404: _NOT_YOURS})
    def post(self, request: Request, job: str) -> Response:
        """Approve the job's current plan hash for my hospital: signed with my managed key (unlocked by the
        password for this request only) and queued for the chain; it counts once mined (202)."""
        user = signed_in_user(request)
        found = selectors.visible_job(user, job)
        data = PlanApprovalIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.approve_plan(job=found, admin=user, password=data.validated_data["password"])
        return Response(_detail(found), status=status.HTTP_202_ACCEPTED)


class JobStartView(APIView):
    @extend_schema(parameters=[JOB], request=StartIn, responses={202: JobDetailOut, 404: _NOT_YOURS})
    def post(self, request: Request, job: str) -> Response:
        """Start a ready job (every hospital approved its plan on chain) by its schedule: now (status
        running, round 0 dispatched), at a time (status scheduled) or periodically (202)."""
        user = signed_in_user(request)
        found = selectors.visible_job(user, job)
        data = StartIn(data=request.data)
        data.is_valid(raise_exception=True)
        scheduling.schedule_job(job=found, admin=user, schedule=data.validated_data.get("schedule"))
        return Response(_detail(found), status=status.HTTP_202_ACCEPTED)


class JobCancelView(APIView):
    @extend_schema(parameters=[JOB], request=None, responses={200: JobDetailOut, 404: _NOT_YOURS})
    def post(self, request: Request, job: str) -> Response:
        """Cancel a job that has not finished: no new round starts; updates still arriving are refused."""
        user = signed_in_user(request)
        found = selectors.visible_job(user, job)
        rounds.cancel_job(job=found, admin=user)
        return Response(_detail(found))


class JobRetrainView(APIView):
    @extend_schema(parameters=[JOB], request=None, responses={201: JobDetailOut, 404: _NOT_YOURS})
    def post(self, request: Request, job: str) -> Response:
        """A new draft job with this one's plan and hospitals (`retrain_of` = this job). Its rounds pin later
        blocks, so patients who revoked TRAINING since are in none of its releases; it needs every
        hospital's approval again."""
        user = signed_in_user(request)
        found = selectors.visible_job(user, job)
        return Response(
            _detail(retraining.retrain_job(job=found, admin=user)), status=status.HTTP_201_CREATED
        )


# --------------------------------------------------------------------------- models


class ModelListView(APIView):
    @extend_schema(operation_id="models_list", parameters=[PageQuery], responses={200: ModelPage})
    def get(self, request: Request) -> Response:
        """The jobs of my hospital that have published model versions, with their latest round: a hospital
        admin's, or those a doctor may predict with (`POST models/{job}/predict`). Paginated."""
        newest_first = Prefetch("model_versions", queryset=ModelVersion.objects.order_by("-round"))
        jobs = selectors.model_jobs_visible_to(signed_in_user(request)).prefetch_related(newest_first)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(jobs, request, view=self) or []
        return paginator.get_paginated_response(ModelJobOut(page, many=True).data)


class ModelDetailView(APIView):
    @extend_schema(parameters=[JOB], responses={200: ModelDetailOut, 404: _NOT_YOURS})
    def get(self, request: Request, job: str) -> Response:
        """Every model version of the job: cid, hashes, metrics, chain reference and provenance (hospitals,
        rounds, the updates with their patient roots and chain references, and how many of those patients
        have revoked their TRAINING consent since)."""
        found = selectors.visible_job(signed_in_user(request), job)
        versions = list(selectors.versions_of(found).select_related("job"))
        body = {
            "job": found,
            "status": found.status,
            "versions": provenance.provenance_of_versions(versions),
        }
        return Response(ModelDetailOut(body).data)


class ModelVersionView(APIView):
    @extend_schema(parameters=[JOB, ROUND], responses={200: VersionOut, 404: _NOT_YOURS})
    def get(self, request: Request, job: str, round_number: int) -> Response:
        """One model version with its provenance."""
        found = selectors.visible_job(signed_in_user(request), job)
        version = selectors.version_of(found, round_number)
        return Response(VersionOut(provenance.provenance_of(version)).data)


class OctetStreamRenderer(BaseRenderer):
    """Lets a client ask for application/octet-stream; errors still go out as JSON text."""

    media_type = "application/octet-stream"
    format = "bin"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")


class ModelWeightsView(APIView):
    renderer_classes = [JSONRenderer, OctetStreamRenderer]

    @extend_schema(
        parameters=[JOB, ROUND],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The version's weights: safetensors bytes, SHA-256 = weights_hash",
            ),
            404: _NOT_YOURS,
            409: OpenApiResponse(description="broken_model: the stored bytes do not match the weights hash"),
            410: OpenApiResponse(description="missing: the weights are gone from the store"),
        },
    )
    def get(self, request: Request, job: str, round_number: int) -> HttpResponse:
        """The version's weights as safetensors bytes (admins of the job's hospitals only)."""
        found = selectors.visible_job(signed_in_user(request), job)
        version = selectors.version_of(found, round_number)
        data = predictions.stored_weights(version)
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = (
            f'attachment; filename="model-{found.job_id[2:14]}-v{version.round}.safetensors"'
        )
        response["X-Weights-SHA256"] = version.weights_hash
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response


class PredictView(APIView):
    @extend_schema(
        parameters=[JOB],
        request=PredictIn,
        responses={
            200: PredictionOut,
            400: OpenApiResponse(description="missing_features (detail names them) or a bad patient address"),
            403: OpenApiResponse(description="The record door's answer: no_consent, expired or revoked"),
            404: OpenApiResponse(description="unknown_job, no_model_version or unknown_patient"),
            409: OpenApiResponse(description="tampered (a record) or broken_model (the version's weights)"),
            410: OpenApiResponse(description="missing: a record's or the model's stored bytes are gone"),
        },
    )
    def post(self, request: Request, job: str) -> Response:
        """Benign or malignant for a patient, from the WDBC laboratory Observations I may open for
        TREATMENT (each open is logged), by the job's latest model version confirmed on chain (else its
        latest). Doctors of the job's hospitals; the prediction is an entry in the patient's access log."""
        user = signed_in_user(request)
        found = selectors.job_for_prediction(user, job)
        data = PredictIn(data=request.data)
        data.is_valid(raise_exception=True)
        prediction = predictions.predict(
            doctor=user, job=found, patient_address=data.validated_data["patient"]
        )
        return Response(PredictionOut(prediction).data)


# --------------------------------------------------------------------------- patients


class TrainingUseView(APIView):
    @extend_schema(
        responses={200: TrainingUseOut, 403: OpenApiResponse(description="not_a_patient")},
    )
    def get(self, request: Request) -> Response:
        """Which model versions learned from my records: each update that trained on them (job, round,
        hospital, its patient root and my Merkle proof, checkable with OpenZeppelin's MerkleProof against
        the root on chain, and its chain reference), each version descending from those updates (with its
        chain reference), and for each hospital whether my TRAINING consent is still in force and which
        consents to revoke to opt out."""
        return Response(TrainingUseOut(provenance.training_use(signed_in_user(request))).data)
