"""Routes of the training API for people (jobs, models, predictions, training use); mounted under /api/."""

from __future__ import annotations

from django.urls import path

from federated.api import views

urlpatterns = [
    path("training/jobs", views.JobListCreateView.as_view(), name="training-jobs"),
    path("training/jobs/<str:job>", views.JobDetailView.as_view(), name="training-job"),
    path("training/jobs/<str:job>/approve", views.JobApproveView.as_view(), name="training-job-approve"),
    path("training/jobs/<str:job>/start", views.JobStartView.as_view(), name="training-job-start"),
    path("training/jobs/<str:job>/cancel", views.JobCancelView.as_view(), name="training-job-cancel"),
    path("training/jobs/<str:job>/retrain", views.JobRetrainView.as_view(), name="training-job-retrain"),
    path("models", views.ModelListView.as_view(), name="models"),
    path("models/<str:job>", views.ModelDetailView.as_view(), name="model"),
    path("models/<str:job>/predict", views.PredictView.as_view(), name="model-predict"),
    path(
        "models/<str:job>/versions/<int:round_number>", views.ModelVersionView.as_view(), name="model-version"
    ),
    path(
        "models/<str:job>/versions/<int:round_number>/weights",
        views.ModelWeightsView.as_view(),
        name="model-version-weights",
    ),
    path("patients/me/training-use", views.TrainingUseView.as_view(), name="my-training-use"),
]
