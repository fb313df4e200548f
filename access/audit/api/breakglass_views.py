"""Break-glass API: a doctor opens emergency access, the patient sees it, the hospital admin reviews it."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.audit import breakglass
from access.audit.api.breakglass_serializers import BreakGlassIn, BreakGlassOut, ReviewIn, ReviewQuery
from access.identity.users import signed_in_user
from access.models import BreakGlass, Role
from healthhash.errors import Forbidden


class BreakGlassView(ListAPIView):
    serializer_class = BreakGlassOut

    def get_queryset(self) -> QuerySet[BreakGlass]:
        user = signed_in_user(self.request)
        if user.role != Role.DOCTOR:
            raise Forbidden("only doctors have break-glass accesses of their own")
        return breakglass.break_glasses_by(doctor=user)

    @extend_schema(responses=BreakGlassOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """As doctor: the break-glass accesses I opened, newest first."""
        return super().get(request, *args, **kwargs)

    @extend_schema(request=BreakGlassIn, responses={201: BreakGlassOut})
    def post(self, request: Request) -> Response:
        """Emergency access to a patient's records without consent, for BREAK_GLASS_HOURS; always logged
        in the patient's access log and queued for review by the admin of the doctor's hospital."""
        data = BreakGlassIn(data=request.data)
        data.is_valid(raise_exception=True)
        glass = breakglass.start_break_glass(
            doctor=signed_in_user(request),
            patient_address=data.validated_data["patient"],
            reason=data.validated_data["reason"],
        )
        return Response(BreakGlassOut(glass).data, status=status.HTTP_201_CREATED)


class ReviewQueueView(ListAPIView):
    serializer_class = BreakGlassOut

    def get_queryset(self) -> QuerySet[BreakGlass]:
        query = ReviewQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return breakglass.review_queue(
            admin=signed_in_user(self.request), status=query.validated_data.get("status")
        )

    @extend_schema(parameters=[ReviewQuery], responses=BreakGlassOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """As hospital admin: break-glass accesses by my hospital's doctors (filter `?status=pending`)."""
        return super().get(request, *args, **kwargs)


class ReviewView(APIView):
    @extend_schema(request=ReviewIn, responses=BreakGlassOut)
    def post(self, request: Request, break_glass_id: str) -> Response:
        """The admin's verdict; an unjustified one ends a still-live break-glass. Other hospitals': 404."""
        data = ReviewIn(data=request.data)
        data.is_valid(raise_exception=True)
        glass = breakglass.review_break_glass(
            admin=signed_in_user(request),
            break_glass_id=break_glass_id,
            verdict=data.validated_data["verdict"],
            note=data.validated_data["note"],
        )
        return Response(BreakGlassOut(glass).data)


class MyBreakGlassView(ListAPIView):
    serializer_class = BreakGlassOut

    def get_queryset(self) -> QuerySet[BreakGlass]:
        user = signed_in_user(self.request)
        if user.role != Role.PATIENT:
            raise Forbidden("only patients have break-glass accesses on their chart")
        return breakglass.break_glasses_on(patient=user)

    @extend_schema(responses=BreakGlassOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """As patient: every emergency access to my records, with its reason and the review's verdict."""
        return super().get(request, *args, **kwargs)
