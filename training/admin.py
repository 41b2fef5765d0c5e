from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from .models import Adapter, Dataset, DatasetExample, JobStatus, TrainingJob
from .services import training_job_cancel, training_job_retry


def _pretty_json(value: object) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "source",
        "base_model",
        "train_count",
        "eval_count",
        "example_count",
        "created",
    ]
    list_filter = ["source", "team", "base_model"]
    search_fields = ["name", "sha256"]
    # Examples, counts and the report come from the services that build the dataset;
    # editing them here would make the report lie about the rows.
    readonly_fields = [
        "source",
        "file",
        "sha256",
        "base_model",
        "eval_fraction",
        "seed",
        "train_count",
        "eval_count",
        "example_count",
        "report_pretty",
        "created_by",
        "created",
    ]
    exclude = ["report"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        return super().get_queryset(request).annotate(_example_count=Count("examples"))

    @admin.display(description="examples", ordering="_example_count")
    def example_count(self, obj: Dataset) -> int:
        return int(getattr(obj, "_example_count", None) or obj.examples.count())

    @admin.display(description="report")
    def report_pretty(self, obj: Dataset) -> str:
        return _pretty_json(obj.report)


@admin.register(DatasetExample)
class DatasetExampleAdmin(admin.ModelAdmin):
    list_display = ["dataset", "ordinal", "split", "token_count", "line"]
    list_filter = ["split", "dataset__team"]
    list_select_related = ["dataset"]
    raw_id_fields = ["dataset", "source_chunk"]
    search_fields = ["dataset__name"]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "team",
        "dataset",
        "base_model",
        "method",
        "status",
        "step",
        "total_steps",
        "train_loss",
        "created",
    ]
    list_filter = ["status", "method", "team"]
    list_select_related = ["team", "dataset"]
    search_fields = ["id", "dataset__name", "worker"]
    raw_id_fields = ["dataset"]
    # Progress is written by the worker; a hand edit would be overwritten at its next step.
    readonly_fields = [
        "status",
        "cancel_requested",
        "step",
        "total_steps",
        "train_loss",
        "eval_loss",
        "learning_rate",
        "tokens_per_s",
        "eta_s",
        "peak_mem_mb",
        "history",
        "worker",
        "heartbeat_at",
        "attempts",
        "error",
        "log",
        "created_by",
        "created",
        "started",
        "finished",
    ]
    actions = ["cancel", "retry"]

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        stopped = 0
        for job in queryset.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]):
            training_job_cancel(job=job)
            stopped += 1
        self.message_user(request, f"{stopped} jobs cancelled (running ones stop at their next step)")

    @admin.action(description="Retry selected failed or cancelled jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        queued, refused = 0, []
        for job in queryset:
            try:
                training_job_retry(job=job)
                queued += 1
            except ValueError as exc:
                refused.append(f"job {job.pk}: {exc}")
        self.message_user(request, f"{queued} jobs queued again", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused), messages.WARNING)


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "base_model", "job", "created"]
    list_filter = ["team", "base_model"]
    search_fields = ["name", "path", "dataset_sha256"]
    raw_id_fields = ["job"]
    readonly_fields = ["dataset_sha256", "metrics", "created"]
