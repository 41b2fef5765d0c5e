"""What the operations dashboard shows, gathered in one place for its page and its JSON.

Everything about documents, jobs, chat and evaluations is limited to the staff user's teams;
workers and queue depths are global (a worker serves every team), as /healthz reports them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import dramatiq
import redis
from django.conf import settings
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team
from chat.generation import backend_name_for
from chat.models import Message, MessageStatus, Role
from expertsite.heartbeat import heartbeats_by_queue
from knowledge.models import Document, DocumentStatus
from training.models import EvaluationRun, JobStatus, TrainingJob
from training.selectors import AnyUser, console_team_list_for_user

RECENT = 10
HOURS = 24


class QueueInfo(TypedDict):
    queue: str
    workers: int
    hosts: list[str]
    depth: int | None  # messages waiting or in progress (dramatiq's qsize), None when unknown
    error: str


class JobFailure(TypedDict):
    id: int
    team: str
    dataset: str
    base_model: str
    error: str
    finished: datetime | None
    url: str


class JobCounts(TypedDict):
    running: int
    queued: int
    failed: int
    failures: list[JobFailure]


class HourCount(TypedDict):
    start: datetime
    label: str  # "14:00" in the site's time zone
    count: int


class ChatStats(TypedDict):
    per_hour: list[HourCount]
    answers_24h: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_n: int


class FeedbackCounts(TypedDict):
    up: int
    down: int
    up_24h: int
    down_24h: int


class MessageError(TypedDict):
    id: int
    expert: str
    error: str
    created: datetime


class DocumentError(TypedDict):
    id: int
    title: str
    collection: str
    error: str
    updated: datetime
    url: str


class RecentErrors(TypedDict):
    messages: list[MessageError]
    documents: list[DocumentError]


class ModeScore(TypedDict):
    mode: str
    containment: float | None
    f1: float | None


class ExpertEvaluation(TypedDict):
    run_id: int
    expert: str
    team: str
    name: str
    status: str
    done: int
    total: int
    created: datetime
    finished: datetime | None
    scores: list[ModeScore]
    recommendation: str
    url: str


class ModelBackend(TypedDict):
    base_model: str
    backend: str  # what serves it now, `auto` resolved
    note: str  # why it is not the backend asked for, when it is not


class GenerationSettings(TypedDict):
    backend: str
    backends: dict[str, str]
    resolved: list[ModelBackend]
    local_dtype: str
    local_device: str
    default_base_model: str


class DashboardData(TypedDict):
    generated: datetime
    teams: list[str]
    documents: dict[str, int]  # every DocumentStatus, zeros included
    documents_total: int
    ingest_depth: int | None  # documents' indexing messages not yet done
    queues: list[QueueInfo]
    jobs: JobCounts
    chat: ChatStats
    feedback: FeedbackCounts
    errors: RecentErrors
    evaluations: list[ExpertEvaluation]
    generation: GenerationSettings


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont: the database sorts the day's samples, not Python."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        # A float formatted here, never user input: safe to put in the SQL text.
        super().__init__(expression, fraction=f"{float(fraction):.4f}", **extra)


def _documents(teams: QuerySet[Team]) -> dict[str, int]:
    counts = dict.fromkeys(DocumentStatus.values, 0)
    rows = (
        Document.objects.filter(collection__team__in=teams)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts.update({status: n for status, n in rows})
    return counts


def _queues() -> list[QueueInfo]:
    try:
        beats = heartbeats_by_queue()
    except redis.RedisError as exc:
        return [
            {"queue": q, "workers": 0, "hosts": [], "depth": None, "error": f"redis: {exc}"}
            for q in settings.WORKER_QUEUES
        ]
    broker = dramatiq.get_broker()
    out: list[QueueInfo] = []
    for queue in sorted(set(settings.WORKER_QUEUES) | set(beats)):
        workers = beats.get(queue, [])
        depth: int | None = None
        error = ""
        if hasattr(broker, "do_qsize"):
            try:
                depth = int(broker.do_qsize(queue))
            except redis.RedisError as exc:
                error = f"redis: {exc}"
        out.append(
            {
                "queue": queue,
                "workers": len(workers),
                "hosts": sorted({b["host"] for b in workers}),
                "depth": depth,
                "error": error,
            }
        )
    return out


def _jobs(teams: QuerySet[Team]) -> JobCounts:
    jobs = TrainingJob.objects.filter(team__in=teams)
    counts = dict(jobs.order_by().values_list("status").annotate(n=Count("id")))
    failed = (
        jobs.filter(status=JobStatus.FAILED)
        .select_related("team", "dataset")
        .order_by(F("finished").desc(nulls_last=True), "-created")[:RECENT]
    )
    return {
        "running": counts.get(JobStatus.RUNNING, 0),
        "queued": counts.get(JobStatus.QUEUED, 0),
        "failed": counts.get(JobStatus.FAILED, 0),
        "failures": [
            {
                "id": job.pk,
                "team": job.team.name,
                "dataset": job.dataset.name,
                "base_model": job.base_model,
                "error": job.error,
                "finished": job.finished,
                "url": reverse("training:job", args=[job.pk]),
            }
            for job in failed
        ],
    }


def _team_messages(teams: QuerySet[Team]) -> QuerySet[Message]:
    return Message.objects.filter(conversation__expert__team__in=teams)


def _chat(teams: QuerySet[Team], now: datetime) -> ChatStats:
    answers = _team_messages(teams).filter(role=Role.ASSISTANT)
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    per_hour = dict(
        answers.filter(created__gte=first_hour)
        .annotate(hour=TruncHour("created", tzinfo=UTC))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("id"))
    )
    buckets: list[HourCount] = []
    for i in range(HOURS):
        start = first_hour + timedelta(hours=i)
        buckets.append(
            {
                "start": start,
                "label": timezone.localtime(start).strftime("%H:00"),
                "count": per_hour.get(start, 0),
            }
        )
    ttft = answers.filter(created__gte=now - timedelta(hours=HOURS), ttft_ms__isnull=False).aggregate(
        p50=Percentile("ttft_ms", 0.5), p95=Percentile("ttft_ms", 0.95), n=Count("id")
    )

    def rounded(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    return {
        "per_hour": buckets,
        "answers_24h": sum(b["count"] for b in buckets),
        "ttft_p50_ms": rounded(ttft["p50"]),
        "ttft_p95_ms": rounded(ttft["p95"]),
        "ttft_n": ttft["n"],
    }


def _feedback(teams: QuerySet[Team], now: datetime) -> FeedbackCounts:
    day = Q(created__gte=now - timedelta(hours=HOURS))
    counts = _team_messages(teams).aggregate(
        up=Count("id", filter=Q(feedback__gt=0)),
        down=Count("id", filter=Q(feedback__lt=0)),
        up_24h=Count("id", filter=Q(feedback__gt=0) & day),
        down_24h=Count("id", filter=Q(feedback__lt=0) & day),
    )
    return {
        "up": counts["up"],
        "down": counts["down"],
        "up_24h": counts["up_24h"],
        "down_24h": counts["down_24h"],
    }


def _errors(teams: QuerySet[Team]) -> RecentErrors:
    messages = (
        _team_messages(teams)
        .filter(status=MessageStatus.FAILED)
        .select_related("conversation__expert")
        .order_by("-created", "-id")[:RECENT]
    )
    documents = (
        Document.objects.filter(collection__team__in=teams, status=DocumentStatus.FAILED)
        .select_related("collection")
        .order_by("-updated", "-id")[:RECENT]
    )
    return {
        "messages": [
            {"id": m.pk, "expert": m.conversation.expert.name, "error": m.error, "created": m.created}
            for m in messages
        ],
        "documents": [
            {
                "id": d.pk,
                "title": str(d),
                "collection": d.collection.name,
                "error": d.error,
                "updated": d.updated,
                "url": reverse("knowledge:document", args=[d.pk]),
            }
            for d in documents
        ],
    }


def _evaluations(teams: QuerySet[Team]) -> list[ExpertEvaluation]:
    # DISTINCT ON: the newest run of each expert in one query.
    latest = (
        EvaluationRun.objects.filter(team__in=teams)
        .select_related("expert", "team")
        .order_by("expert_id", "-created")
        .distinct("expert_id")
    )
    out: list[ExpertEvaluation] = []
    for run in sorted(latest, key=lambda r: r.created, reverse=True):
        scores: list[ModeScore] = [
            {
                "mode": mode,
                "containment": (run.metrics.get(mode) or {}).get("containment"),
                "f1": (run.metrics.get(mode) or {}).get("f1"),
            }
            for mode in run.modes
            if mode in run.metrics
        ]
        out.append(
            {
                "run_id": run.pk,
                "expert": run.expert.name,
                "team": run.team.name,
                "name": str(run),
                "status": run.status,
                "done": run.done,
                "total": run.total,
                "created": run.created,
                "finished": run.finished,
                "scores": scores,
                "recommendation": run.recommendation,
                "url": reverse("training:evaluation", args=[run.pk]),
            }
        )
    return out


def _generation() -> GenerationSettings:
    resolved: list[ModelBackend] = []
    for name in settings.BASE_MODELS:
        backend, note = backend_name_for(name)
        resolved.append({"base_model": name, "backend": backend, "note": note})
    return {
        "backend": settings.GENERATION_BACKEND,
        "backends": dict(settings.GENERATION_BACKENDS),
        "resolved": resolved,
        "local_dtype": settings.LOCAL_DTYPE,
        "local_device": settings.LOCAL_DEVICE,
        "default_base_model": settings.DEFAULT_BASE_MODEL,
    }


def dashboard_data(*, user: AnyUser) -> DashboardData:
    """The dashboard for a staff user (PermissionDenied for anyone else)."""
    teams = console_team_list_for_user(user=user)
    now = timezone.now()
    documents = _documents(teams)
    queues = _queues()
    return {
        "generated": now,
        "teams": list(teams.order_by("name").values_list("name", flat=True)),
        "documents": documents,
        "documents_total": sum(documents.values()),
        "ingest_depth": next((q["depth"] for q in queues if q["queue"] == "ingest"), None),
        "queues": queues,
        "jobs": _jobs(teams),
        "chat": _chat(teams, now),
        "feedback": _feedback(teams, now),
        "errors": _errors(teams),
        "evaluations": _evaluations(teams),
        "generation": _generation(),
    }
