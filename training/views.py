"""The training console: datasets, jobs and adapters of the staff user's teams."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from chat.basemodels import BaseModelError
from chat.selectors import get_expert_for_user

from .datasets import DatasetInvalid
from .forms import AdapterAttachForm, DatasetFromFeedbackForm, DatasetUploadForm, TrainingJobForm
from .hyperparams import DEFAULTS
from .models import Dataset, JobStatus, TrainingJob
from .progress import job_event
from .selectors import (
    adapter_expert_list,
    adapter_list_for_user,
    console_team_list_for_user,
    console_user,
    dataset_examples_preview,
    dataset_job_list,
    dataset_list_with_job_counts,
    get_adapter_for_user,
    get_dataset_for_user,
    get_job_for_user,
    job_adapter,
    job_list_for_user,
)
from .services import (
    adapter_attach,
    dataset_create_from_feedback,
    dataset_create_from_upload,
    training_job_cancel,
    training_job_create,
    training_job_retry,
)

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Anonymous people go to the login page; signed-in non-staff get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        console_user(request.user)
        return view(request, *args, **kwargs)

    return wrapped


@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    from .evaluation_views import evaluation_list_for_user  # it imports staff_required from here

    return render(
        request,
        "training/overview.html",
        {
            "jobs": job_list_for_user(user=request.user)[:100],
            "datasets": dataset_list_with_job_counts(user=request.user)[:100],
            "adapters": adapter_list_for_user(user=request.user)[:100],
            "evaluations": evaluation_list_for_user(user=request.user)[:10],
        },
    )


@staff_required
def dataset_new(request: HttpRequest) -> HttpResponse:
    teams = console_team_list_for_user(user=request.user)
    upload_form = DatasetUploadForm(teams=teams)
    feedback_form = DatasetFromFeedbackForm(teams=teams)
    invalid: DatasetInvalid | None = None
    if request.method == "POST":
        if request.POST.get("action") == "feedback":
            feedback_form = DatasetFromFeedbackForm(request.POST, teams=teams)
            form: DatasetUploadForm | DatasetFromFeedbackForm = feedback_form
        else:
            upload_form = DatasetUploadForm(request.POST, request.FILES, teams=teams)
            form = upload_form
        if form.is_valid():
            try:
                dataset = _dataset_create(request, form)
            except DatasetInvalid as exc:
                invalid = exc
            except BaseModelError as exc:
                # The tokenizer could not be loaded for the statistics: say which model and why.
                form.add_error("base_model", str(exc))
            else:
                messages.success(request, f"Dataset {dataset.name} created.")
                return redirect("training:dataset", pk=dataset.pk)
    return render(
        request,
        "training/dataset_new.html",
        {"upload_form": upload_form, "feedback_form": feedback_form, "invalid": invalid},
        status=422 if invalid is not None else 200,
    )


def _dataset_create(request: HttpRequest, form: DatasetUploadForm | DatasetFromFeedbackForm) -> Dataset:
    data = form.cleaned_data
    common: dict[str, Any] = {
        "team": data["team"],
        "name": data["name"],
        "base_model": data["base_model"],
        "eval_fraction": data["eval_fraction"],
        "seed": data["seed"],
        "created_by": console_user(request.user),
    }
    if isinstance(form, DatasetFromFeedbackForm):
        return dataset_create_from_feedback(**common)
    upload = data["file"]
    return dataset_create_from_upload(
        **common, data=upload.read(), filename=upload.name, columns=form.columns()
    )


@staff_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_dataset_for_user(request.user, pk)
    posted = request.method == "POST"
    form = TrainingJobForm(request.POST if posted else None, base_model=dataset.base_model)
    if posted and form.is_valid():
        try:
            job = training_job_create(
                dataset=dataset,
                base_model=form.cleaned_data["base_model"],
                method=form.cleaned_data["method"],
                hyperparams=form.hyperparams(),
                created_by=console_user(request.user),
            )
        except ValueError as exc:  # HyperparamsInvalid is one
            _add_job_error(form, str(exc))
        else:
            messages.success(request, f"Job {job.pk} queued.")
            return redirect("training:job", pk=job.pk)
    report = dataset.report or {}
    return render(
        request,
        "training/dataset_detail.html",
        {
            "dataset": dataset,
            "report": report,
            "errors": report.get("errors", []),
            "tokens": report.get("tokens") or {},
            "examples": dataset_examples_preview(dataset=dataset),
            "jobs": dataset_job_list(dataset=dataset),
            "form": form,
        },
        status=422 if form.errors else 200,
    )


def _add_job_error(form: TrainingJobForm, message: str) -> None:
    # hyperparams_clean names the offending key first ("lr must be between ..."): put it there.
    key = message.split(" ", 1)[0].strip("'")
    field = f"hp_{key}"
    form.add_error(field if key in DEFAULTS and field in form.fields else None, message)


@staff_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request.user, pk)
    adapter = job_adapter(job=job)
    event = dict(job_event(job))
    # The page draws the whole history; the socket then only adds the newest points.
    event["last"] = job.history
    return render(
        request,
        "training/job_detail.html",
        {
            "job": job,
            "event": event,
            "adapter": adapter,
            "experts": adapter_expert_list(user=request.user, adapter=adapter) if adapter else [],
            "attach_form": AdapterAttachForm(),
            "can_cancel": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
            "can_retry": job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        },
    )


@staff_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request.user, pk)
    job = training_job_cancel(job=job)
    if job.status == JobStatus.CANCELLED:
        messages.success(request, f"Job {job.pk} cancelled.")
    elif job.cancel_requested and job.status == JobStatus.RUNNING:
        messages.info(request, f"Job {job.pk} stops at its next step.")
    else:
        messages.error(request, f"Job {job.pk} is {job.status}; there is nothing to cancel.")
    return redirect("training:job", pk=job.pk)


@staff_required
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job: TrainingJob = get_job_for_user(request.user, pk)
    try:
        training_job_retry(job=job)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job {job.pk} queued again.")
    return redirect("training:job", pk=job.pk)


@staff_required
@require_POST
def adapter_use(request: HttpRequest, pk: int) -> HttpResponse:
    adapter = get_adapter_for_user(request.user, pk)
    form = AdapterAttachForm(request.POST)
    back = redirect("training:job", pk=adapter.job_id) if adapter.job_id else redirect("training:overview")
    if not form.is_valid():
        messages.error(request, "Pick an expert.")
        return back
    expert = get_expert_for_user(request.user, form.cleaned_data["expert"])
    try:
        adapter_attach(adapter=adapter, expert=expert)
    except ValueError as exc:
        messages.error(request, f"Could not use the adapter: {exc}")
    else:
        messages.success(request, f"Expert {expert.name} now answers with adapter {adapter.name}.")
    return back
