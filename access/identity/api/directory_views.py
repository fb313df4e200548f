"""Directory API: the hospitals and doctors a user may see (patients pick consent grantees here)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from access.identity.api.serializers import DoctorListQuery, DoctorSerializer, HospitalSerializer
from access.identity.selectors import doctors_visible_to, hospitals_visible_to
from access.models import Doctor, Hospital


class HospitalListView(ListAPIView):
    serializer_class = HospitalSerializer

    def get_queryset(self) -> QuerySet[Hospital]:
        return hospitals_visible_to(self.request.user)

    @extend_schema(responses=HospitalSerializer(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Active hospitals (a consortium admin sees all; a hospital admin also sees their own)."""
        return super().get(request, *args, **kwargs)


class DoctorListView(ListAPIView):
    serializer_class = DoctorSerializer

    def get_queryset(self) -> QuerySet[Doctor]:
        query = DoctorListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return doctors_visible_to(self.request.user, hospital_slug=query.validated_data.get("hospital"))

    @extend_schema(parameters=[DoctorListQuery], responses=DoctorSerializer(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Active doctors of active hospitals, optionally of one hospital (`?hospital=<slug>`)."""
        return super().get(request, *args, **kwargs)
