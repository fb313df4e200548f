"""The access app's API routes, mounted under /api/ by healthhash/urls.py."""

from __future__ import annotations

from django.urls import include, path

from access.identity.api import auth_views, directory_views, signup_views

urlpatterns = [
    path("auth/csrf", auth_views.CsrfView.as_view(), name="auth-csrf"),
    path("auth/signup", signup_views.SignupView.as_view(), name="auth-signup"),
    path("auth/login", auth_views.LoginView.as_view(), name="auth-login"),
    path("auth/logout", auth_views.LogoutView.as_view(), name="auth-logout"),
    path("auth/siwe/nonce", auth_views.SiweNonceView.as_view(), name="auth-siwe-nonce"),
    path("auth/siwe/verify", auth_views.SiweVerifyView.as_view(), name="auth-siwe-verify"),
    path("auth/tokens", auth_views.ApiTokensView.as_view(), name="auth-tokens"),
    path("auth/tokens/<int:token_id>", auth_views.ApiTokenRevokeView.as_view(), name="auth-token"),
    path("me", auth_views.MeView.as_view(), name="me"),
    path("hospitals", directory_views.HospitalListView.as_view(), name="hospitals"),
    path("doctors", directory_views.DoctorListView.as_view(), name="doctors"),
    path("hospitals/<slug:slug>", directory_views.HospitalDetailView.as_view(), name="hospital"),
    path(
        "hospitals/<slug:slug>/deactivate",
        directory_views.HospitalDeactivateView.as_view(),
        name="hospital-deactivate",
    ),
    path("doctors/<int:doctor_id>", directory_views.DoctorDetailView.as_view(), name="doctor"),
    path(
        "doctors/<int:doctor_id>/deactivate",
        directory_views.DoctorDeactivateView.as_view(),
        name="doctor-deactivate",
    ),
    path("", include("access.consent.api.urls")),
    path("", include("access.audit.api.urls")),
]
