"""Reads of the training console; every view and consumer checks access through these.

The console is for staff only, and even staff see only the teams they belong to: being
staff opens the console, membership decides what is in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404

from accounts.models import Team
from accounts.selectors import team_list_for_user
from chat.basemodels import base_model_list, base_model_unavailable_reason
from chat.models import Expert
from chat.selectors import expert_list_for_user

from .models import Adapter, Dataset, DatasetExample, TrainingJob

AnyUser = User | AnonymousUser


def console_user(user: AnyUser) -> User:
    """`user` if they may open the training console at all; PermissionDenied if not."""
    if not isinstance(user, User) or not user.is_authenticated or not user.is_staff:
        raise PermissionDenied("The training console is for staff")
    return user


def console_team_list_for_user(*, user: AnyUser) -> QuerySet[Team]:
    return team_list_for_user(user=console_user(user))


def dataset_list_for_user(*, user: AnyUser) -> QuerySet[Dataset]:
    staff = console_user(user)
    return Dataset.objects.filter(team__memberships__user=staff).select_related("team")


def job_list_for_user(*, user: AnyUser) -> QuerySet[TrainingJob]:
    staff = console_user(user)
    return TrainingJob.objects.filter(team__memberships__user=staff).select_related("team", "dataset")


def adapter_list_for_user(*, user: AnyUser) -> QuerySet[Adapter]:
    staff = console_user(user)
    return Adapter.objects.filter(team__memberships__user=staff).select_related("team", "job")


def get_dataset_for_user(user: AnyUser, pk: int) -> Dataset:
    """The one permission-checked getter for a dataset (404 hides other teams' datasets)."""
    dataset = dataset_list_for_user(user=user).filter(pk=pk).first()
    if dataset is None:
        raise Http404("No such dataset")
    return dataset


def get_job_for_user(user: AnyUser, pk: int) -> TrainingJob:
    """The one permission-checked getter for a training job (404 hides other teams' jobs)."""
    job = job_list_for_user(user=user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such training job")
    return job


def get_adapter_for_user(user: AnyUser, pk: int) -> Adapter:
    """The one permission-checked getter for an adapter (404 hides other teams' adapters)."""
    adapter = adapter_list_for_user(user=user).filter(pk=pk).first()
    if adapter is None:
        raise Http404("No such adapter")
    return adapter


def dataset_examples_preview(*, dataset: Dataset, limit: int = 10) -> QuerySet[DatasetExample]:
    return dataset.examples.order_by("ordinal")[:limit]


def dataset_job_list(*, dataset: Dataset) -> QuerySet[TrainingJob]:
    return dataset.jobs.order_by("-created")


def job_adapter(*, job: TrainingJob) -> Adapter | None:
    """The adapter a job left, if it succeeded and the adapter still exists."""
    return Adapter.objects.filter(job=job).first()


def dataset_list_with_job_counts(*, user: AnyUser) -> QuerySet[Dataset]:
    return dataset_list_for_user(user=user).annotate(job_count=Count("jobs"))


def adapter_expert_list(*, user: AnyUser, adapter: Adapter) -> QuerySet[Expert]:
    """Experts of the adapter's team that `user` can see (the attach form's choices)."""
    return expert_list_for_user(user=user).filter(team=adapter.team_id).order_by("name")


@dataclass(frozen=True)
class BaseModelChoice:
    name: str
    label: str
    unavailable: str | None  # why it cannot be used on this host; None when it can


def base_model_choice_list() -> list[BaseModelChoice]:
    return [
        BaseModelChoice(name=s.name, label=s.label, unavailable=base_model_unavailable_reason(spec=s))
        for s in base_model_list()
    ]
