"""The API's endpoints for hospital workers, under /api/training/worker/ (federated/urls.py includes them).

A hospital worker has no session and no token: each request is authorised by the hospital account's
signature alone. Release, moments and refusals carry `auth` = an EIP-191 signature over the request's
statement (federated.worker_auth); an update carries the EIP-712 `Update` signature the contract checks.
The views parse and bound the body (400 naming the field, 413 over the endpoint's size), recover the
signer (401 `bad_worker_signature` when the signature is malformed, expired or does not recover) and hand
it to federated.rounds, which compares it with the hospital's account (403 `bad_signature`) and decides.

    GET  config[?hospital=slug]  {"chain_id", "training_registry" (null: not deployed), "cid_version",
                                  "hospital": {"slug", "hospital_id", "account_address", "active"} | null}
    POST release    {"job_id", "round", "hospital_id", "known_block"?, "auth"} -> {"record_count",
                    "patient_count", "pinned_block", "sealed": base64 of the sealed release (a delta from
                    known_block when given)}
    POST moments    {..., "moments": FeatureMoments JSON, "auth"} -> {"status"}
    POST refusals   {..., "reason": code, "detail": text, "auth"} -> {"status"}
    POST updates    {"update": Update message, "signature", "cid", "patients", "metrics", "epsilon",
                    "timings"} -> 201 {"status", "duplicate": false, ...} | 200 {"duplicate": true, ...}
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.models import Hospital
from contracts import client
from federated import rounds, worker_auth
from federated.models import RoundUpdate
from healthhash.errors import DomainError, NotFound
from healthhash.parsers import BodyTooLarge
from healthhash.schema import ApiError

HEX32 = r"^0x[0-9a-fA-F]{64}$"
SIGNATURE_65 = r"^0x[0-9a-fA-F]{130}$"
REASON_CODE = r"^[a-z][a-z0-9_]{0,63}$"
# A signed request is a few hundred bytes; moments are 61 numbers. An update lists its patients: ~45 bytes
# each, so 16 MiB leaves room for a quarter of a million.
SMALL_BODY_BYTES = 64 * 1024
UPDATE_BODY_BYTES = 16 * 1024 * 1024
MAX_UPDATE_PATIENTS = 250_000


class WorkerSignatureInvalid(DomainError):
    """The request's `auth` is malformed, expired, too far ahead or does not recover to an address."""

    code = "bad_worker_signature"
    status_code = status.HTTP_401_UNAUTHORIZED


# ---------------------------------------------------------------- request and answer shapes


class AuthIn(serializers.Serializer):
    expires = serializers.IntegerField(min_value=0, help_text="Unix seconds; at most 300 s ahead.")
    signature = serializers.RegexField(SIGNATURE_65, help_text="EIP-191 signature, 0x + 65 bytes hex.")


class SignedRequestIn(serializers.Serializer):
    job_id = serializers.RegexField(HEX32)
    round = serializers.IntegerField(min_value=0, max_value=2**32 - 1)
    hospital_id = serializers.RegexField(HEX32)
    auth = AuthIn()


class ReleaseIn(SignedRequestIn):
    known_block = serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        required=False,
        allow_null=True,
        help_text="The block of this job's release the worker holds: the answer is a delta from it.",
    )


class MomentsIn(SignedRequestIn):
    moments = serializers.DictField(help_text="networks.FeatureMoments JSON: count, mean[30], m2[30].")


class RefusalIn(SignedRequestIn):
    reason = serializers.RegexField(REASON_CODE, help_text="e.g. no_consented_records, plan_not_approved.")
    detail = serializers.CharField(max_length=4000, allow_blank=True, trim_whitespace=False)


class UpdateIn(serializers.Serializer):
    # A declared field named like Serializer.update: DRF's metaclass takes it out of the class attributes, so
    # the method stays; the stubs cannot know that.
    update = serializers.DictField(  # type: ignore[assignment]
        help_text="The EIP-712 Update message (contracts.messages.Update)."
    )
    signature = serializers.RegexField(SIGNATURE_65)
    cid = serializers.CharField(max_length=128)
    patients = serializers.ListField(
        child=serializers.CharField(max_length=42), max_length=MAX_UPDATE_PATIENTS, allow_empty=False
    )
    metrics = serializers.DictField()
    epsilon = serializers.FloatField(allow_null=True, required=False, default=None, min_value=0)
    timings = serializers.DictField(child=serializers.FloatField(min_value=0), required=False, default=dict)


class ConfigQuery(serializers.Serializer):
    hospital = serializers.SlugField(required=False, max_length=64, help_text="A hospital slug to describe.")


class HospitalOut(serializers.Serializer):
    slug = serializers.CharField()
    hospital_id = serializers.CharField()
    account_address = serializers.CharField()
    active = serializers.BooleanField()


class ConfigOut(serializers.Serializer):
    chain_id = serializers.IntegerField()
    training_registry = serializers.CharField(allow_null=True, help_text="null: not deployed on this chain")
    cid_version = serializers.IntegerField()
    hospital = HospitalOut(allow_null=True)


class ReleaseOut(serializers.Serializer):
    record_count = serializers.IntegerField()
    patient_count = serializers.IntegerField()
    pinned_block = serializers.IntegerField()
    sealed = serializers.CharField(help_text="Base64 of the release sealed to the hospital's public key.")


class StatusOut(serializers.Serializer):
    status = serializers.CharField()


class UpdateOut(serializers.Serializer):
    status = serializers.CharField()
    duplicate = serializers.BooleanField()
    update_id = serializers.CharField()


_SIGNED_ERRORS = {
    401: OpenApiResponse(ApiError, description="bad_worker_signature: malformed, expired or not recoverable"),
    403: OpenApiResponse(ApiError, description="bad_signature: not signed by the hospital's account"),
    404: OpenApiResponse(ApiError, description="No such job, round or hospital"),
    409: OpenApiResponse(ApiError, description="The round or the hospital's part in it is not open"),
}


# ---------------------------------------------------------------- views


class _WorkerView(APIView):
    """Signature-only endpoints: no session, no CSRF, no token; every call is signature-checked."""

    authentication_classes: Sequence[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]
    max_body_bytes: ClassVar[int] = SMALL_BODY_BYTES

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge(
                f"The request body is over this endpoint's limit of {self.max_body_bytes} bytes."
            )
        super().initial(request, *args, **kwargs)


def _signed(
    request: Request, serializer_class: type[SignedRequestIn], action: str
) -> tuple[dict[str, Any], str]:
    """The validated body and the address that signed it."""
    if not isinstance(request.data, Mapping):
        raise DomainError("The body must be a JSON object.", code="invalid")
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    fields = dict(data.validated_data)
    try:
        signer = worker_auth.recover_signer(
            action=action,
            job_id=fields["job_id"],
            round_number=fields["round"],
            hospital_id=fields["hospital_id"],
            body={key: value for key, value in request.data.items() if key != "auth"},
            auth=fields["auth"],
        )
    except worker_auth.BadWorkerSignature as exc:
        raise WorkerSignatureInvalid(str(exc), field="auth") from exc
    return fields, signer


class WorkerConfigView(_WorkerView):
    @extend_schema(parameters=[ConfigQuery], responses={200: ConfigOut, 404: ApiError})
    def get(self, request: Request) -> Response:
        """Where the worker's chain reads and signatures point, and the hospital as the server knows it."""
        query = ConfigQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            config = dict(rounds.worker_config())
        except client.ContractNotDeployed:
            # A state of the deployment, not an outage: no registry yet, and a worker refuses to start on it.
            config = {
                "chain_id": client.chain_id(),
                "training_registry": None,
                "cid_version": settings.IPFS_CID_VERSION,
            }
        slug = query.validated_data.get("hospital")
        if slug is None and "hospital" in request.query_params:  # DRF reads `?hospital=` as absent
            raise DomainError("hospital must be a hospital's slug.", field="hospital", code="blank")
        config["hospital"] = None if slug is None else _hospital_public(slug)
        return Response(ConfigOut(config).data)


class ReleaseView(_WorkerView):
    @extend_schema(request=ReleaseIn, responses={200: ReleaseOut, **_SIGNED_ERRORS})
    def post(self, request: Request) -> Response:
        """The round's dataset release for the signing hospital, sealed to its key (a delta from
        `known_block` when the worker names the release it holds)."""
        fields, signer = _signed(request, ReleaseIn, "release")
        release = rounds.release_for_worker(
            job_id=fields["job_id"].lower(),
            round_number=fields["round"],
            hospital_id=fields["hospital_id"].lower(),
            signer=signer,
            known_block=fields.get("known_block"),
        )
        body = {
            "record_count": release.record_count,
            "patient_count": release.patient_count,
            "pinned_block": release.pinned_block,
            "sealed": base64.b64encode(release.sealed_bytes).decode("ascii"),
        }
        return Response(ReleaseOut(body).data)


class MomentsView(_WorkerView):
    @extend_schema(request=MomentsIn, responses={200: StatusOut, **_SIGNED_ERRORS})
    def post(self, request: Request) -> Response:
        """Round 0: the hospital's feature moments of its training rows."""
        fields, signer = _signed(request, MomentsIn, "moments")
        row = rounds.receive_moments(
            job_id=fields["job_id"].lower(),
            round_number=fields["round"],
            hospital_id=fields["hospital_id"].lower(),
            signer=signer,
            moments=fields["moments"],
        )
        return Response(StatusOut(_status_of(row)).data)


class RefusalView(_WorkerView):
    @extend_schema(request=RefusalIn, responses={200: StatusOut, **_SIGNED_ERRORS})
    def post(self, request: Request) -> Response:
        """The hospital does not take part in the round, with its reason (no_consented_records: sits out)."""
        fields, signer = _signed(request, RefusalIn, "refusal")
        row = rounds.receive_refusal(
            job_id=fields["job_id"].lower(),
            round_number=fields["round"],
            hospital_id=fields["hospital_id"].lower(),
            signer=signer,
            reason=fields["reason"],
            detail=fields["detail"],
        )
        return Response(StatusOut(_status_of(row)).data)


class UpdateView(_WorkerView):
    max_body_bytes = UPDATE_BODY_BYTES

    @extend_schema(
        request=UpdateIn,
        responses={
            201: UpdateOut,
            200: OpenApiResponse(UpdateOut, description="The same update was in already (duplicate)"),
            **_SIGNED_ERRORS,
            409: OpenApiResponse(ApiError, description="update_conflict: another update holds the round"),
        },
    )
    def post(self, request: Request) -> Response:
        """A hospital's signed local update of one round (its weights by CID in the content store)."""
        if not isinstance(request.data, Mapping):
            raise DomainError("The body must be a JSON object.", code="invalid")
        data = UpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        row, duplicate = rounds.receive_update(
            message=fields["update"],
            signature=fields["signature"],
            cid=fields["cid"],
            patients=list(fields["patients"]),
            metrics=fields["metrics"],
            epsilon=fields["epsilon"],
            timings=fields["timings"],
        )
        body = {"status": _status_of(row)["status"], "duplicate": duplicate, "update_id": row.update_id}
        return Response(
            UpdateOut(body).data, status=status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED
        )


def _status_of(row: RoundUpdate) -> dict[str, str]:
    return {"status": str(row.status)}


def _hospital_public(slug: str) -> dict[str, Any]:
    """What the Directory says of the hospital in public (on chain too): its id, account and state."""
    hospital = (
        Hospital.objects.filter(slug=slug).only("slug", "hospital_id", "account_address", "active").first()
    )
    if hospital is None:
        raise NotFound(f"No hospital {slug!r}.", code="hospital_not_found", field="hospital")
    return {
        "slug": hospital.slug,
        "hospital_id": hospital.hospital_id,
        "account_address": hospital.account_address,
        "active": hospital.active,
    }


urlpatterns = [
    path("config", WorkerConfigView.as_view(), name="training-worker-config"),
    path("release", ReleaseView.as_view(), name="training-worker-release"),
    path("moments", MomentsView.as_view(), name="training-worker-moments"),
    path("refusals", RefusalView.as_view(), name="training-worker-refusals"),
    path("updates", UpdateView.as_view(), name="training-worker-updates"),
]
