"""`GET /api/patients`: where a doctor (or a hospital admin) finds the address of a patient they serve.

A patient appears only to a holder of her consent in force (signed and pending, or active, unexpired
and not being revoked), so the list says nothing the holder's own consents do not already show; it adds
the username to search by. A patient who has granted nothing yet tells the doctor her address herself
(`GET /api/me`, or the portal's profile page) for a first access request.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from access.consent import selectors as consent_selectors
from access.identity.selectors import active_doctor
from access.identity.users import signed_in_user
from access.models import Consent, Purpose, Role, User
from healthhash.errors import Forbidden
from healthhash.query import QuerySerializer


class PatientQuery(QuerySerializer):
    query = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Part of the username, or the start of the address (any case).",
    )


class PatientConsentOut(serializers.ModelSerializer):
    status = serializers.CharField(source="effective_status")
    purpose = serializers.SerializerMethodField()

    class Meta:
        model = Consent
        fields = ["id", "scope", "purpose", "status", "expires_at", "granted_block"]

    def get_purpose(self, consent: Consent) -> str:
        return Purpose(consent.purpose).label


class PatientOut(serializers.ModelSerializer):
    address = serializers.CharField(source="eth_address")
    consents = PatientConsentOut(source="consents_in_force", many=True)

    class Meta:
        model = User
        fields = ["username", "address", "consents"]


class PatientListView(ListAPIView):
    serializer_class = PatientOut

    def get_queryset(self) -> QuerySet[User]:
        user = signed_in_user(self.request)
        if user.role == Role.DOCTOR:
            active_doctor(user, to="look up patients")  # 403 not_active_doctor, as the record lists
        elif user.role != Role.HOSPITAL_ADMIN:
            raise Forbidden(
                "Only doctors and hospital admins have patients to look up; your own address is in "
                "GET /api/me."
            )
        query = PatientQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return consent_selectors.patients_consenting_to(user, query=query.validated_data.get("query"))

    @extend_schema(parameters=[PatientQuery], responses=PatientOut(many=True))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        """The patients whose consent in force I hold (doctor) or my hospital holds (hospital admin), by
        username, with their address and those consents. `?query=` narrows by username or address."""
        return super().get(request, *args, **kwargs)
