"""Directory API: the hospitals and doctors a user may see (patients pick consent grantees here), and
the admins' writes to the chain's Directory.

Writes: the consortium admin creates and registers hospitals (`POST /api/hospitals`) and deactivates
them (`POST /api/hospitals/{slug}/deactivate`); a hospital admin creates and registers the hospital's
doctors (`POST /api/doctors`) and deactivates them (`POST /api/doctors/{id}/deactivate`). Each is an
EIP-712 DirectoryAction signed with the acting admin's managed key (unlocked by the `password` in the
body, throttled and locked like every re-confirmation) and relayed through the outbox: the answer is
202 with the entry, its `status` ("pending") and the outbox `action`; `GET` on the entry (its
`Location`) shows "active" or "inactive" once the indexer has seen the Directory event, or "failed".
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.identity import directory
from access.identity.api.serializers import (
    AdminPasswordIn,
    DoctorCreateIn,
    DoctorDetailOut,
    DoctorListQuery,
    DoctorSerializer,
    ErrorOut,
    HospitalCreateIn,
    HospitalDetailOut,
    HospitalSerializer,
)
from access.identity.selectors import doctors_visible_to, hospitals_visible_to
from access.identity.users import signed_in_user
from access.models import Doctor, Hospital, Role, User
from healthhash.errors import Forbidden, NotFound

WRITE_ERRORS = {
    400: ErrorOut,
    401: ErrorOut,
    403: OpenApiResponse(ErrorOut, description="Not this admin's to change, or a wrong password"),
    404: ErrorOut,
    409: OpenApiResponse(ErrorOut, description="Taken, not active, or an action still pending"),
    423: OpenApiResponse(ErrorOut, description="key_locked: too many wrong passwords"),
    429: ErrorOut,
}


def _visible_hospital(user: User, slug: str) -> Hospital:
    hospital = hospitals_visible_to(user).select_related("admin").filter(slug=slug).first()
    if hospital is None:
        raise NotFound("No such hospital.", code="hospital_not_found")
    return hospital


def _visible_doctor(user: User, doctor_id: int) -> Doctor:
    doctor = doctors_visible_to(user).filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound("No such doctor.", code="doctor_not_found")
    return doctor


def _accepted(body: dict, location: str) -> Response:
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class HospitalListView(ListAPIView):
    serializer_class = HospitalSerializer

    def get_queryset(self) -> QuerySet[Hospital]:
        return hospitals_visible_to(signed_in_user(self.request))

    @extend_schema(responses=HospitalSerializer(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Active hospitals (a consortium admin sees all; a hospital admin also sees their own)."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=HospitalCreateIn, responses={202: HospitalDetailOut, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Create a hospital and register it in the Directory (consortium admin; 202 while it is mined).

        `admin_username` with `admin_password` creates the hospital's admin (with a managed key);
        without `admin_password` it names an existing hospital admin who runs no hospital yet.
        """
        data = HospitalCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        hospital, _ = directory.create_and_register_hospital(
            actor=signed_in_user(request),
            password=fields.pop("password"),
            admin_password=fields.pop("admin_password", ""),
            **fields,
        )
        return _accepted(HospitalDetailOut(hospital).data, f"/api/hospitals/{hospital.slug}")


class DoctorListView(ListAPIView):
    serializer_class = DoctorSerializer

    def get_queryset(self) -> QuerySet[Doctor]:
        query = DoctorListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return doctors_visible_to(
            signed_in_user(self.request), hospital_slug=query.validated_data.get("hospital")
        )

    @extend_schema(parameters=[DoctorListQuery], responses=DoctorSerializer(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Active doctors of active hospitals, optionally of one hospital (`?hospital=<slug>`)."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=DoctorCreateIn, responses={202: DoctorDetailOut, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Create a doctor's account and register it in the Directory (the hospital's admin; 202).

        The doctor signs with their own wallet (`eth_address`) or with a managed key created for
        them, unlocked by `doctor_password`. `hospital` defaults to the admin's own hospital.
        """
        data = DoctorCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        hospital = _hospital_to_staff(signed_in_user(request), fields.pop("hospital", None))
        doctor, _ = directory.create_and_register_doctor(
            actor=signed_in_user(request), password=fields.pop("password"), hospital=hospital, **fields
        )
        return _accepted(DoctorDetailOut(doctor).data, f"/api/doctors/{doctor.pk}")


def _hospital_to_staff(user: User, slug: str | None) -> Hospital:
    """The hospital a doctor is added to: the one named (if visible), else the admin's own."""
    if user.role != Role.HOSPITAL_ADMIN:
        raise Forbidden("only a hospital's admin registers its doctors")
    if slug:
        return _visible_hospital(user, slug)
    if user.hospital is None:
        raise Forbidden("you run no hospital")
    return user.hospital


class HospitalDetailView(APIView):
    @extend_schema(responses={200: HospitalDetailOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request: Request, slug: str) -> Response:
        """One hospital with its Directory status (pending, active, failed, inactive) and latest action."""
        return Response(HospitalDetailOut(_visible_hospital(signed_in_user(request), slug)).data)


class HospitalDeactivateView(APIView):
    @extend_schema(request=AdminPasswordIn, responses={202: HospitalDetailOut, **WRITE_ERRORS})
    def post(self, request: Request, slug: str) -> Response:
        """Deactivate a hospital in the Directory (consortium admin; 202 while it is mined)."""
        data = AdminPasswordIn(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = _visible_hospital(signed_in_user(request), slug)
        directory.request_hospital_deactivation(
            hospital=hospital, actor=signed_in_user(request), password=data.validated_data["password"]
        )
        return _accepted(HospitalDetailOut(hospital).data, f"/api/hospitals/{hospital.slug}")


class DoctorDetailView(APIView):
    @extend_schema(responses={200: DoctorDetailOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request: Request, doctor_id: int) -> Response:
        """One doctor with their Directory status (pending, active, failed, inactive) and latest action."""
        return Response(DoctorDetailOut(_visible_doctor(signed_in_user(request), doctor_id)).data)


class DoctorDeactivateView(APIView):
    @extend_schema(request=AdminPasswordIn, responses={202: DoctorDetailOut, **WRITE_ERRORS})
    def post(self, request: Request, doctor_id: int) -> Response:
        """Deactivate one of my hospital's doctors in the Directory (its admin; 202 while it is mined)."""
        data = AdminPasswordIn(data=request.data)
        data.is_valid(raise_exception=True)
        doctor = _visible_doctor(signed_in_user(request), doctor_id)
        directory.request_doctor_deactivation(
            doctor=doctor, actor=signed_in_user(request), password=data.validated_data["password"]
        )
        return _accepted(DoctorDetailOut(doctor).data, f"/api/doctors/{doctor.pk}")
