"""Evaluation pages of the training console: start a run, watch it, read its report, export it.

Like the rest of the console these are for staff, and a run is visible only to members of its
team: every view starts with `get_evaluation_for_user` (or the list reads below it).

Progress is polled (`progress.json`, every 2 s while a run is queued or running) rather than
pushed over the `training.evaluation.<id>` group: a run scores one answer every few seconds, so
a poll is just as live, and the page needs no socket route of its own.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from chat.models import Expert, Mode
from chat.selectors import expert_list_for_user

from .evaluation import (
    EvaluationInvalid,
    Question,
    evaluation_create,
    questions_from_dataset,
    questions_parse,
)
from .models import Dataset, EvaluationResult, EvaluationRun, EvaluationStatus
from .selectors import AnyUser, console_user, dataset_list_for_user
from .views import staff_required

ACTIVE = (EvaluationStatus.QUEUED, EvaluationStatus.RUNNING)
ADAPTER_MODES = (Mode.FT.value, Mode.RAG_FT.value)
QUESTION_EXTENSIONS = (".jsonl", ".json")


# --- reads ------------------------------------------------------------------------------------


def evaluation_list_for_user(*, user: AnyUser) -> QuerySet[EvaluationRun]:
    staff = console_user(user)
    return EvaluationRun.objects.filter(team__memberships__user=staff).select_related(
        "team", "expert", "dataset", "created_by"
    )


def get_evaluation_for_user(user: AnyUser, pk: int) -> EvaluationRun:
    """The one permission-checked getter for an evaluation run (404 hides other teams' runs)."""
    run = evaluation_list_for_user(user=user).filter(pk=pk).first()
    if run is None:
        raise Http404("No such evaluation")
    return run


def evaluation_expert_list(*, user: AnyUser) -> QuerySet[Expert]:
    return expert_list_for_user(user=console_user(user)).order_by("team__name", "name")


def evaluation_dataset_list(*, user: AnyUser) -> QuerySet[Dataset]:
    """Datasets with a held-out split: only those can supply questions."""
    return dataset_list_for_user(user=user).filter(eval_count__gt=0).order_by("team__name", "-created")


# --- the report, shaped for the page -------------------------------------------------------------

Kind = Literal["ratio", "percent", "ms", "rate", "count"]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: Kind
    # True: higher is better; False: lower is better; None: neither (refusals are right when
    # the knowledge base lacks the answer, wrong otherwise), so no "best" is marked.
    higher_better: bool | None
    help: str


METRICS: list[Metric] = [
    Metric("containment", "Containment", "percent", True, "Answers that contain the reference fact"),
    Metric("f1", "F1", "ratio", True, "Token overlap of answer and reference (SQuAD F1)"),
    Metric("hit_at_5", "Hit@5", "percent", True, "The question's source among the top 5 passages"),
    Metric("mrr", "MRR", "ratio", True, "Mean reciprocal rank of the first passage from the source"),
    Metric("citation_precision", "Citation precision", "ratio", True, "Cited passages holding the fact"),
    Metric("refusal_rate", "Refusals", "percent", None, "Answers that decline to answer"),
    Metric("p50_ms", "Latency p50", "ms", False, "Median time to the whole answer"),
    Metric("p95_ms", "Latency p95", "ms", False, "95th percentile time to the whole answer"),
    Metric("tokens_per_s", "Tokens/s", "rate", True, "Generation speed"),
    Metric("n", "Answers", "count", None, "Questions scored in this mode"),
    Metric("errors", "Errors", "count", False, "Questions whose generation failed"),
]


def metric_display(value: Any, kind: Kind) -> str:
    if value is None:
        return "—"
    if kind == "percent":
        return f"{round(100 * float(value))}%"
    if kind == "ratio":
        return f"{float(value):.2f}"
    if kind == "ms":
        return f"{float(value):.0f} ms"
    if kind == "rate":
        return f"{float(value):.1f}"
    return str(value)


@dataclass(frozen=True)
class MetricCell:
    mode: str
    value: float | None
    display: str
    best: bool


@dataclass(frozen=True)
class MetricRow:
    metric: Metric
    cells: list[MetricCell]


def _best(values: list[float | None], higher_better: bool | None) -> float | None:
    present = [v for v in values if v is not None]
    # One mode, or all equal: nothing stands out.
    if higher_better is None or len(set(present)) < 2:
        return None
    return max(present) if higher_better else min(present)


def metric_rows(run: EvaluationRun) -> list[MetricRow]:
    rows = []
    for metric in METRICS:
        values = [(run.metrics.get(mode) or {}).get(metric.key) for mode in run.modes]
        best = _best(values, metric.higher_better)
        cells = [
            MetricCell(mode, v, metric_display(v, metric.kind), best is not None and v == best)
            for mode, v in zip(run.modes, values, strict=True)
        ]
        rows.append(MetricRow(metric, cells))
    return rows


CHART_W, CHART_H = 260, 150
CHART_TOP, CHART_BOTTOM, CHART_SIDE = 18, 22, 10


@dataclass(frozen=True)
class Bar:
    mode: str
    display: str
    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 1)

    @property
    def value_y(self) -> float:
        return round(self.y - 4, 1)


@dataclass(frozen=True)
class Chart:
    metric: Metric
    bars: list[Bar]
    width: int = CHART_W
    height: int = CHART_H
    baseline: float = CHART_H - CHART_BOTTOM
    label_y: float = CHART_H - 6


def metric_charts(run: EvaluationRun) -> list[Chart]:
    """One bar chart per metric, one bar per mode. Shares and ratios share the 0..1 scale so
    their bars compare across charts; times and rates scale to their largest value."""
    charts = []
    plot_h = CHART_H - CHART_TOP - CHART_BOTTOM
    slot = (CHART_W - 2 * CHART_SIDE) / max(len(run.modes), 1)
    for metric in METRICS:
        if metric.kind == "count":
            continue
        values = [(run.metrics.get(mode) or {}).get(metric.key) for mode in run.modes]
        top = 1.0 if metric.kind in ("ratio", "percent") else max([v for v in values if v] or [1.0])
        bars = []
        for i, (mode, value) in enumerate(zip(run.modes, values, strict=True)):
            height = plot_h * min(float(value or 0) / top, 1.0)
            bars.append(
                Bar(
                    mode=mode,
                    display=metric_display(value, metric.kind),
                    x=round(CHART_SIDE + i * slot + slot * 0.2, 1),
                    y=round(CHART_H - CHART_BOTTOM - height, 1),
                    width=round(slot * 0.6, 1),
                    height=round(height, 1),
                )
            )
        charts.append(Chart(metric, bars))
    return charts


@dataclass(frozen=True)
class Retrieved:
    position: int
    source: str
    right: bool  # the first passage from the question's source document


@dataclass(frozen=True)
class ModeAnswer:
    mode: str
    result: EvaluationResult | None  # None: not scored yet
    retrieved: list[Retrieved] = field(default_factory=list)
    cited: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class QuestionRow:
    ordinal: int
    question: str
    reference: str
    source: str
    answers: list[ModeAnswer]

    @property
    def contained_by(self) -> list[str]:
        return [a.mode for a in self.answers if a.result is not None and a.result.contains]


def _mode_answer(mode: str, result: EvaluationResult | None) -> ModeAnswer:
    if result is None:
        return ModeAnswer(mode, None)
    retrieved = [Retrieved(i, source, result.rank == i) for i, source in enumerate(result.retrieved or [], 1)]
    cited = [c for c in result.citations or [] if c.get("cited")]
    return ModeAnswer(mode, result, retrieved, cited)


def question_rows(run: EvaluationRun) -> list[QuestionRow]:
    by_key = {(r.ordinal, r.mode): r for r in run.results.all()}
    rows = []
    for i, q in enumerate(run.questions):
        rows.append(
            QuestionRow(
                ordinal=i,
                question=str(q.get("question", "")),
                reference=str(q.get("answer", "")),
                source=str(q.get("source") or ""),
                answers=[_mode_answer(mode, by_key.get((i, mode))) for mode in run.modes],
            )
        )
    return rows


class EvaluationProgress(TypedDict):
    id: int
    status: str
    done: int
    total: int
    error: str
    active: bool


def evaluation_progress_of(run: EvaluationRun) -> EvaluationProgress:
    return {
        "id": run.pk,
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "error": run.error,
        "active": run.status in ACTIVE,
    }


# --- exports --------------------------------------------------------------------------------


class ResultExport(TypedDict):
    mode: str
    ordinal: int
    question: str
    reference: str
    source: str
    answer: str
    contains: bool
    f1: float
    rank: int | None
    retrieved: list[str]
    citations: list[dict[str, Any]]
    citation_precision: float | None
    refused: bool
    latency_ms: float | None
    ttft_ms: float | None
    tokens: int
    tokens_per_s: float | None
    error: str


EXPORT_FIELDS = list(ResultExport.__annotations__)
# Spreadsheet programs run a cell that starts with one of these as a formula, and the
# answers come from a model that can be steered by the documents it read. The CSV is for
# people with a spreadsheet, so such cells get a leading apostrophe; the JSON is exact.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def result_export(result: EvaluationResult) -> ResultExport:
    return {
        "mode": result.mode,
        "ordinal": result.ordinal,
        "question": result.question,
        "reference": result.reference,
        "source": result.source,
        "answer": result.answer,
        "contains": result.contains,
        "f1": result.f1,
        "rank": result.rank,
        "retrieved": list(result.retrieved or []),
        "citations": list(result.citations or []),
        "citation_precision": result.citation_precision,
        "refused": result.refused,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "tokens": result.tokens,
        "tokens_per_s": result.tokens_per_s,
        "error": result.error,
    }


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if value is None:
        return ""
    return value


def evaluation_export_json(run: EvaluationRun) -> dict[str, Any]:
    return {
        "run": {
            "id": run.pk,
            "name": run.name,
            "team": run.team.slug,
            "expert": {"slug": run.expert.slug, "name": run.expert.name, "base_model": run.expert.base_model},
            "modes": run.modes,
            "status": run.status,
            "done": run.done,
            "total": run.total,
            "dataset": {"id": run.dataset.pk, "name": run.dataset.name} if run.dataset else None,
            "created": run.created,
            "finished": run.finished,
            "created_by": run.created_by.username if run.created_by else None,
            "error": run.error,
        },
        "metrics": run.metrics,
        "recommendation": run.recommendation,
        "questions": run.questions,
        "results": [result_export(r) for r in run.results.order_by("ordinal", "mode")],
    }


# --- the new-evaluation form -----------------------------------------------------------------


class ExpertSelect(forms.Select):
    """Each option says whether its expert has an adapter and which team it is in, so the page
    can offer ft/rag_ft and the team's datasets only where they apply."""

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        expert = getattr(value, "instance", None)
        if isinstance(expert, Expert):
            option["attrs"]["data-adapter"] = "yes" if expert.adapter_id else "no"
            option["attrs"]["data-team"] = str(expert.team_id)
        return option


class DatasetSelect(forms.Select):
    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        dataset = getattr(value, "instance", None)
        if isinstance(dataset, Dataset):
            option["attrs"]["data-team"] = str(dataset.team_id)
        return option


class ModesWidget(forms.CheckboxSelectMultiple):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled_values: set[str] = set()

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in ADAPTER_MODES:
            option["attrs"]["data-needs-adapter"] = "yes"
        if str(value) in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class ExpertChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.team.name})"


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.team.name}, {obj.eval_count} held out)"


class EvaluationForm(forms.Form):
    expert = ExpertChoiceField(queryset=Expert.objects.none(), empty_label=None, widget=ExpertSelect)
    modes = forms.MultipleChoiceField(
        choices=Mode.choices,
        widget=ModesWidget,
        initial=[Mode.BASE, Mode.RAG],
        help_text="ft and rag_ft need an adapter on the expert (attach one from a finished job).",
    )
    name = forms.CharField(max_length=160, required=False, help_text="Left blank: the expert and modes.")
    source = forms.ChoiceField(
        choices=[("upload", "Upload a question file"), ("dataset", "A training dataset's held-out split")],
        widget=forms.RadioSelect,
        initial="upload",
        label="Questions",
    )
    questions_file = forms.FileField(
        required=False,
        label="Question file",
        help_text='JSONL, one question a line: {"question": ..., "answer": ..., "source": "file.pdf"} '
        "(source is optional; it lets retrieval be scored).",
    )
    dataset = DatasetChoiceField(
        queryset=Dataset.objects.none(),
        required=False,
        widget=DatasetSelect,
        help_text="Only the examples held out of training, so a fine-tuned adapter is not tested on "
        "what it learned.",
    )

    def __init__(
        self, *args: Any, experts: QuerySet[Expert], datasets: QuerySet[Dataset], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.questions: list[Question] = []
        expert_field = self.fields["expert"]
        dataset_field = self.fields["dataset"]
        assert isinstance(expert_field, forms.ModelChoiceField)
        assert isinstance(dataset_field, forms.ModelChoiceField)
        expert_field.queryset = experts
        dataset_field.queryset = datasets
        # Without script the adapter modes of the expert shown first are right; the page's
        # script keeps them right when another expert is picked.
        shown = self._shown_expert(experts)
        widget = self.fields["modes"].widget
        assert isinstance(widget, ModesWidget)
        if shown is not None and shown.adapter_id is None:
            widget.disabled_values = set(ADAPTER_MODES)

    def _shown_expert(self, experts: QuerySet[Expert]) -> Expert | None:
        key: Any = self.data.get("expert") if self.is_bound else self.initial.get("expert")
        if key:
            try:
                found = experts.filter(pk=int(getattr(key, "pk", key))).first()
            except (TypeError, ValueError):
                found = None
            if found is not None:
                return found
        return experts.first()

    def clean_questions_file(self) -> Any:
        upload = self.cleaned_data.get("questions_file")
        if upload is None:
            return None
        if upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(f"The file is over the {settings.MAX_UPLOAD_MB} MB limit.")
        if not upload.name.lower().endswith(QUESTION_EXTENSIONS):
            raise forms.ValidationError("Upload a .jsonl file.")
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        expert: Expert | None = data.get("expert")
        if expert is not None and expert.adapter_id is None:
            needing = [m for m in data.get("modes", []) if m in ADAPTER_MODES]
            if needing:
                self.add_error("modes", f"{', '.join(needing)} need an adapter on {expert.name}.")
        if data.get("source") == "dataset":
            self._questions_from_dataset(expert, data.get("dataset"))
        elif data.get("source") == "upload" and "questions_file" not in self.errors:
            self._questions_from_upload(data.get("questions_file"))
        return data

    def _questions_from_dataset(self, expert: Expert | None, dataset: Dataset | None) -> None:
        if dataset is None:
            self.add_error("dataset", "Pick a dataset.")
            return
        # The run belongs to the expert's team: questions from another team's dataset would
        # show that team's data to people outside it.
        if expert is not None and dataset.team_id != expert.team_id:
            self.add_error("dataset", f"Pick a dataset of {expert.team.name}, the expert's team.")
            return
        try:
            self.questions = questions_from_dataset(dataset)
        except EvaluationInvalid as exc:
            self.add_error("dataset", str(exc))

    def _questions_from_upload(self, upload: Any) -> None:
        if upload is None:
            self.add_error("questions_file", "Choose a question file.")
            return
        try:
            self.questions = questions_parse(upload.read())
        except UnicodeDecodeError:
            self.add_error("questions_file", "The file is not UTF-8 text.")
        except EvaluationInvalid as exc:
            self.add_error("questions_file", str(exc))


# --- views ----------------------------------------------------------------------------------


@staff_required
def evaluation_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "training/evaluation_list.html",
        {"evaluations": evaluation_list_for_user(user=request.user)[:200]},
    )


@staff_required
def evaluation_new(request: HttpRequest) -> HttpResponse:
    experts = evaluation_expert_list(user=request.user)
    datasets = evaluation_dataset_list(user=request.user)
    initial: dict[str, Any] = {}
    wanted = request.GET.get("expert")
    if wanted:
        initial["expert"] = experts.filter(slug=wanted).first()
    posted = request.method == "POST"
    form = EvaluationForm(
        request.POST if posted else None,
        request.FILES if posted else None,
        experts=experts,
        datasets=datasets,
        initial=initial,
    )
    if posted and form.is_valid():
        data = form.cleaned_data
        try:
            run = evaluation_create(
                expert=data["expert"],
                questions=form.questions,
                modes=list(data["modes"]),
                name=data["name"],
                dataset=data["dataset"] if data["source"] == "dataset" else None,
                created_by=console_user(request.user),
            )
        except EvaluationInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Evaluation {run.pk} queued: {run.total} answers to score.")
            return redirect("training:evaluation", pk=run.pk)
    return render(
        request,
        "training/evaluation_new.html",
        {"form": form, "has_experts": experts.exists()},
        status=422 if form.errors else 200,
    )


@staff_required
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_evaluation_for_user(request.user, pk)
    return render(
        request,
        "training/evaluation_detail.html",
        {
            "run": run,
            "progress": evaluation_progress_of(run),
            "metric_rows": metric_rows(run),
            "charts": metric_charts(run),
            "questions": question_rows(run),
            "has_metrics": bool(run.metrics),
        },
    )


@never_cache
@staff_required
def evaluation_progress(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_evaluation_for_user(request.user, pk)
    return JsonResponse(evaluation_progress_of(run))


@staff_required
def evaluation_export_csv(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_evaluation_for_user(request.user, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(EXPORT_FIELDS)
    for result in run.results.order_by("ordinal", "mode").iterator():
        row = result_export(result)
        writer.writerow([_csv_cell(row[key]) for key in EXPORT_FIELDS])  # type: ignore[literal-required]
    return response


@staff_required
def evaluation_export_json_view(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_evaluation_for_user(request.user, pk)
    response = JsonResponse(evaluation_export_json(run), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.json"'
    return response
