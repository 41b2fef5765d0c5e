from __future__ import annotations

from django.urls import path

from . import evaluation_views, views

app_name = "training"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("datasets/new", views.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/retry", views.job_retry, name="job_retry"),
    path("adapters/<int:pk>/use", views.adapter_use, name="adapter_use"),
    path("evaluations/", evaluation_views.evaluation_list, name="evaluations"),
    path("evaluations/new", evaluation_views.evaluation_new, name="evaluation_new"),
    path("evaluations/<int:pk>/", evaluation_views.evaluation_detail, name="evaluation"),
    path(
        "evaluations/<int:pk>/progress.json", evaluation_views.evaluation_progress, name="evaluation_progress"
    ),
    path("evaluations/<int:pk>/export.csv", evaluation_views.evaluation_export_csv, name="evaluation_csv"),
    path(
        "evaluations/<int:pk>/export.json",
        evaluation_views.evaluation_export_json_view,
        name="evaluation_json",
    ),
]
