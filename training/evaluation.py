"""Evaluation runs: the same questions through base, rag, ft and rag_ft, scored without a judge."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chat.generation import GenerationError
from chat.models import Expert, Mode
from chat.pipeline import answer_collect, answer_prepare
from chat.prompting import cited_numbers, is_refusal

from . import metrics
from .models import Dataset, EvaluationResult, EvaluationRun, EvaluationStatus, Split

log = logging.getLogger(__name__)
HIT_K = 5


class Question(TypedDict, total=False):
    question: str
    answer: str
    source: str | None


class EvaluationInvalid(ValueError):
    pass


def questions_parse(data: bytes) -> list[Question]:
    """JSONL of {question, answer, source?}; a bad line is an error naming its number."""
    out: list[Question] = []
    for number, line in enumerate(data.decode("utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationInvalid(f"line {number}: bad JSON ({exc.msg})") from None
        if (
            not isinstance(row, dict)
            or not str(row.get("question", "")).strip()
            or not str(row.get("answer", "")).strip()
        ):
            raise EvaluationInvalid(f"line {number}: needs a question and an answer")
        source = row.get("source")
        out.append(
            {
                "question": str(row["question"]),
                "answer": str(row["answer"]),
                "source": str(source)[:500] if source else None,
            }
        )
    if not out:
        raise EvaluationInvalid("no questions")
    return out


def questions_from_dataset(dataset: Dataset) -> list[Question]:
    """The held-out (eval split) examples of a training dataset."""
    out: list[Question] = []
    for messages in dataset.examples.filter(split=Split.EVAL).values_list("messages", flat=True):
        user = [m["content"] for m in messages if m["role"] == "user"]
        if user:
            out.append({"question": user[-1], "answer": messages[-1]["content"], "source": None})
    if not out:
        raise EvaluationInvalid(f"dataset '{dataset.name}' has no held-out examples")
    return out


def modes_valid_for(expert: Expert, modes: list[str]) -> list[str]:
    unknown = [m for m in modes if m not in Mode.values]
    if unknown:
        raise EvaluationInvalid(f"unknown modes: {', '.join(unknown)}")
    if expert.adapter_id is None and any(m in (Mode.FT, Mode.RAG_FT) for m in modes):
        raise EvaluationInvalid(f"modes ft and rag_ft need an adapter on expert '{expert.slug}'")
    if not modes:
        raise EvaluationInvalid("choose at least one mode")
    return modes


def evaluation_create(
    *,
    expert: Expert,
    questions: list[Question],
    modes: list[str],
    name: str = "",
    dataset: Dataset | None = None,
    created_by: User | None = None,
    enqueue: bool = True,
) -> EvaluationRun:
    modes = modes_valid_for(expert, modes)
    if dataset is not None and dataset.team_id != expert.team_id:
        raise EvaluationInvalid("the dataset and the expert belong to different teams")
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            team=expert.team,
            expert=expert,
            name=name or f"{expert.name}: {', '.join(modes)}",
            modes=modes,
            questions=list(questions),
            dataset=dataset,
            total=len(questions) * len(modes),
            created_by=created_by,
        )
        if enqueue:
            from .tasks import evaluation_task

            run_id = run.pk
            transaction.on_commit(lambda: evaluation_task.send(run_id))
    return run


def _push(run: EvaluationRun) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            f"training.evaluation.{run.pk}",
            {
                "type": "evaluation.progress",
                "id": run.pk,
                "status": run.status,
                "done": run.done,
                "total": run.total,
            },
        )
    except Exception:  # progress display only: never fail the run for it
        log.warning("could not push evaluation %s progress", run.pk, exc_info=True)


def _score(expert: Expert, mode: str, q: Question, ordinal: int) -> EvaluationResult:
    reference, source = q["answer"], q.get("source") or ""
    result = EvaluationResult(
        mode=mode, ordinal=ordinal, question=q["question"], reference=reference, source=source
    )
    started = time.perf_counter()
    try:
        prepared = answer_prepare(expert=expert, question=q["question"], mode=mode)
        answer = answer_collect(prepared)
    except GenerationError as exc:
        result.error = f"{exc.code}: {exc.message}"
        return result
    result.latency_ms = (time.perf_counter() - started) * 1000
    result.answer = answer.text.strip()
    result.ttft_ms, result.tokens, result.tokens_per_s = (
        answer.ttft_ms,
        answer.stats.tokens,
        answer.tokens_per_s,
    )
    result.f1 = metrics.token_f1(result.answer, reference)
    result.contains = metrics.contains(result.answer, reference)
    result.refused = is_refusal(result.answer)
    passages = prepared.passages or []
    result.retrieved = [p.source for p in passages]
    if passages and source:
        result.rank = metrics.first_rank(result.retrieved, source)
    cited = cited_numbers(result.answer)
    result.citations = [
        {"n": p.n, "source": p.source, "page": p.page, "cited": p.n in cited} for p in passages
    ]
    if passages:
        result.citation_precision = metrics.citation_precision(
            [p.text for p in passages if p.n in cited], reference
        )
    return result


def summarize(results: list[EvaluationResult]) -> dict[str, Any]:
    ok = [r for r in results if not r.error]
    with_source = [r for r in ok if r.source and r.retrieved]
    precisions = [r.citation_precision for r in ok if r.citation_precision is not None]
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    rates = [r.tokens_per_s for r in ok if r.tokens_per_s]

    def rnd(x: float | None, n: int = 3) -> float | None:
        return round(x, n) if x is not None else None

    return {
        "n": len(results),
        "errors": len(results) - len(ok),
        "hit_at_5": rnd(metrics.mean([float(r.rank is not None and r.rank <= HIT_K) for r in with_source])),
        "mrr": rnd(metrics.mean([1.0 / r.rank if r.rank else 0.0 for r in with_source])),
        "f1": rnd(metrics.mean([r.f1 for r in ok])),
        "containment": rnd(metrics.mean([float(r.contains) for r in ok])),
        "citation_precision": rnd(metrics.mean(precisions)),
        "refusal_rate": rnd(metrics.mean([float(r.refused) for r in ok])),
        "p50_ms": rnd(metrics.percentile(latencies, 0.5), 1),
        "p95_ms": rnd(metrics.percentile(latencies, 0.95), 1),
        "tokens_per_s": rnd(metrics.mean(rates), 1),
    }


def recommend(by_mode: dict[str, dict[str, Any]], *, gpu_minutes: float | None = None) -> str:
    """A sentence a team can act on, drawn from the numbers only."""
    if not by_mode:
        return ""

    def pct(x: float | None) -> str:
        return f"{round(100 * (x or 0))}%"

    best = max(by_mode, key=lambda m: ((by_mode[m]["containment"] or 0), (by_mode[m]["f1"] or 0)))
    parts = [
        f"Best here: {best} ({pct(by_mode[best]['containment'])} of answers hold the reference fact, "
        f"F1 {by_mode[best]['f1'] or 0:.2f})."
    ]
    if "rag" in by_mode and by_mode["rag"].get("hit_at_5") is not None:
        parts.append(
            f"Retrieval puts the right document in the top 5 for {pct(by_mode['rag']['hit_at_5'])} "
            "of questions."
        )
    if "base" in by_mode and best != "base":
        gain = (by_mode[best]["containment"] or 0) - (by_mode["base"]["containment"] or 0)
        parts.append(f"That is {round(100 * gain)} points over the base model alone.")
    if "rag" in by_mode and "rag_ft" in by_mode:
        delta = (by_mode["rag_ft"]["f1"] or 0) - (by_mode["rag"]["f1"] or 0)
        cost = f" and cost {gpu_minutes:.0f} minutes of training" if gpu_minutes else ""
        verb = "adds" if delta >= 0 else "loses"
        parts.append(f"The adapter {verb} {abs(round(100 * delta))} points of F1 over RAG alone{cost}.")
    elif "rag" in by_mode and "ft" in by_mode:
        delta = (by_mode["ft"]["containment"] or 0) - (by_mode["rag"]["containment"] or 0)
        parts.append(
            f"Fine-tuning alone is {abs(round(100 * delta))} points "
            f"{'ahead of' if delta > 0 else 'behind'} RAG on containment."
        )
    return " ".join(parts)


def _claim(run_id: int, worker: str) -> EvaluationRun | None:
    stale = timezone.now() - timedelta(minutes=10)
    taken = EvaluationRun.objects.filter(
        Q(status=EvaluationStatus.QUEUED) | Q(status=EvaluationStatus.RUNNING, heartbeat_at__lt=stale),
        pk=run_id,
    ).update(status=EvaluationStatus.RUNNING, worker=worker, heartbeat_at=timezone.now())
    return EvaluationRun.objects.select_related("expert", "expert__adapter").get(pk=run_id) if taken else None


def evaluation_run(*, run_id: int, worker: str) -> EvaluationRun | None:
    """Score every question in every mode; results already stored are not redone."""
    run = _claim(run_id, worker)
    if run is None:
        return None
    _push(run)
    expert = run.expert
    try:
        done = set(run.results.values_list("mode", "ordinal"))
        for mode in run.modes:
            for i, q in enumerate(run.questions):
                if (mode, i) in done:
                    continue
                result = _score(expert, mode, q, i)
                result.run = run
                result.save()
                run.done = run.results.count()
                EvaluationRun.objects.filter(pk=run.pk).update(done=run.done, heartbeat_at=timezone.now())
                _push(run)
        by_mode = {m: summarize(list(run.results.filter(mode=m))) for m in run.modes}
        gpu = None
        if expert.adapter and expert.adapter.metrics.get("seconds"):
            gpu = expert.adapter.metrics["seconds"] / 60
        run.metrics, run.recommendation = by_mode, recommend(by_mode, gpu_minutes=gpu)
        run.status, run.finished = EvaluationStatus.SUCCEEDED, timezone.now()
    except Exception as exc:
        log.exception("evaluation %s failed", run.pk)
        run.status, run.error, run.finished = (
            EvaluationStatus.FAILED,
            f"{type(exc).__name__}: {exc}",
            timezone.now(),
        )
    EvaluationRun.objects.filter(pk=run.pk).update(
        metrics=run.metrics,
        recommendation=run.recommendation,
        status=run.status,
        error=run.error,
        finished=run.finished,
        done=run.results.count(),
    )
    _push(run)
    return run
