"""Evaluation pages of the training console: who may open them, the report drawn from stored
results (no model runs here), its CSV and JSON exports, and the form that queues a run."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import dramatiq
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Team
from accounts.services import team_create
from chat.models import Expert, Mode
from chat.services import expert_create
from tests.support import logged_in, staff
from training.models import (
    Adapter,
    Dataset,
    DatasetExample,
    EvaluationResult,
    EvaluationRun,
    EvaluationStatus,
    Split,
)

pytestmark = pytest.mark.django_db

QUESTIONS: list[dict[str, Any]] = [
    {"question": "What is the code name of the blue pump?", "answer": "Kestrel-7", "source": "pumps.pdf"},
    {"question": "Who founded <b>Tessarine</b>?", "answer": "Ilse Varga", "source": None},
]
SCRIPT_ANSWER = "<script>alert('x')</script> no idea"
FORMULA_ANSWER = '=HYPERLINK("http://evil.example","Ilse Varga")'


@pytest.fixture
def expert(acme: Team) -> Expert:
    return expert_create(team=acme, name="Pump expert", slug="pumps", mode=Mode.BASE)


def _metrics(containment: float, f1: float, hit: float | None) -> dict[str, Any]:
    return {
        "n": 2,
        "errors": 0,
        "hit_at_5": hit,
        "mrr": hit / 2 if hit is not None else None,
        "f1": f1,
        "containment": containment,
        "citation_precision": 1.0 if hit is not None else None,
        "refusal_rate": 0.5 if hit is None else 0.0,
        "p50_ms": 812.0,
        "p95_ms": 1450.5,
        "tokens_per_s": 31.2,
    }


@pytest.fixture
def finished(expert: Expert, alice: User) -> EvaluationRun:
    """A finished base-vs-rag run, written straight to the database as the worker would."""
    run = EvaluationRun.objects.create(
        team=expert.team,
        expert=expert,
        name="base vs rag",
        modes=["base", "rag"],
        questions=QUESTIONS,
        status=EvaluationStatus.SUCCEEDED,
        done=4,
        total=4,
        metrics={"base": _metrics(0.0, 0.12, None), "rag": _metrics(1.0, 0.87, 1.0)},
        recommendation="Best here: rag (100% of answers hold the reference fact, F1 0.87).",
        created_by=alice,
    )
    row: dict[str, Any] = {
        "run": run,
        "latency_ms": 800.0,
        "ttft_ms": 120.0,
        "tokens": 12,
        "tokens_per_s": 30.0,
    }
    for i, q in enumerate(QUESTIONS):
        common = {**row, "ordinal": i, "question": q["question"], "reference": q["answer"]}
        common["source"] = q["source"] or ""
        EvaluationResult.objects.create(mode="base", answer=SCRIPT_ANSWER, f1=0.1, refused=True, **common)
    EvaluationResult.objects.create(
        mode="rag",
        answer="The blue pump is called Kestrel-7 [2].",
        f1=0.8,
        contains=True,
        retrieved=["manuals/intro.md", "manuals/pumps.pdf", "faq.md"],
        rank=2,
        citations=[
            {"n": 1, "source": "manuals/intro.md", "page": None, "cited": False},
            {"n": 2, "source": "manuals/pumps.pdf", "page": 4, "cited": True},
        ],
        citation_precision=1.0,
        **{**row, "ordinal": 0, "question": QUESTIONS[0]["question"], "reference": "Kestrel-7"},
        source="pumps.pdf",
    )
    EvaluationResult.objects.create(
        mode="rag",
        answer=FORMULA_ANSWER,
        f1=0.5,
        contains=True,
        **{**row, "ordinal": 1, "question": QUESTIONS[1]["question"], "reference": "Ilse Varga"},
    )
    return run


# --- who gets in --------------------------------------------------------------------------


def test_only_staff_open_evaluation_pages_and_anonymous_people_are_sent_to_login(
    alice: User, bob: User, finished: EvaluationRun
) -> None:
    base = f"/training/evaluations/{finished.pk}/"
    pages = ["/training/evaluations/", "/training/evaluations/new", base]
    pages += [base + "progress.json", base + "export.csv", base + "export.json"]

    for url in pages:
        assert logged_in(bob).get(url).status_code == 403, url
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/"), url
    assert logged_in(bob).post("/training/evaluations/new", {}).status_code == 403

    client = logged_in(staff(alice))
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_staff_of_another_team_get_404_on_its_evaluations(
    charlie: User, globex: Team, finished: EvaluationRun
) -> None:
    client = logged_in(staff(charlie))
    base = f"/training/evaluations/{finished.pk}/"

    for url in [base, base + "progress.json", base + "export.csv", base + "export.json"]:
        assert client.get(url).status_code == 404, url
    listing = client.get("/training/evaluations/").content.decode()
    assert "base vs rag" not in listing and base not in listing
    # Nor can the form reach another team's expert.
    form = client.get("/training/evaluations/new").content.decode()
    assert "Pump expert" not in form


# --- the report ---------------------------------------------------------------------------


def test_the_report_puts_the_modes_side_by_side_with_a_chart_per_metric_and_the_recommendation(
    alice: User, finished: EvaluationRun
) -> None:
    html = logged_in(staff(alice)).get(f"/training/evaluations/{finished.pk}/").content.decode()

    assert "Best here: rag (100% of answers hold the reference fact, F1 0.87)." in html
    assert re.search(r'class="card recommendation" id="recommendation"', html)
    table = html[html.index('id="metrics"') : html.index("</table>", html.index('id="metrics"'))]
    assert re.search(
        r'data-metric="containment".*?>0%<.*?class="num best" data-mode="rag">100%<', table, re.S
    )
    assert re.search(r'data-metric="f1".*?>0\.12<.*?>0\.87<', table, re.S)
    assert re.search(r'data-metric="p95_ms".*?>1450 ms<', table, re.S)
    assert re.search(r'data-metric="hit_at_5".*?data-mode="base">—<', table, re.S)
    for key in ["containment", "f1", "hit_at_5", "mrr", "citation_precision", "refusal_rate", "p50_ms"]:
        chart = re.search(rf'<figure class="metric-chart" data-metric="{key}">(.*?)</figure>', html, re.S)
        assert chart, key
        assert chart.group(1).count("<rect ") == 2, key  # one bar per mode
    # Containment: base has no bar height, rag the full plot height.
    chart = re.search(r'data-metric="containment">(.*?)</figure>', html, re.S)
    assert chart
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', chart.group(1))]
    assert heights[0] == 0 and heights[1] > 100
    assert f'href="/training/evaluations/{finished.pk}/export.csv"' in html
    assert f'href="/training/evaluations/{finished.pk}/export.json"' in html


def test_the_drill_down_shows_each_answer_escaped_with_its_retrieval_and_citations(
    alice: User, finished: EvaluationRun
) -> None:
    html = logged_in(staff(alice)).get(f"/training/evaluations/{finished.pk}/").content.decode()

    first = re.search(r'<details class="question" data-ordinal="0">(.*?)</details>', html, re.S)
    assert first
    q = first.group(1)
    assert "What is the code name of the blue pump?" in q and "Kestrel-7" in q and "pumps.pdf" in q
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; no idea" in q
    rag = q[q.index('data-mode="rag"') :]
    assert "The blue pump is called Kestrel-7 [2]." in rag
    assert "source at rank 2" in rag
    assert re.search(r'<li class="right"[^>]*><code>manuals/pumps\.pdf</code>', rag)
    assert re.search(r"\[2\] <code>manuals/pumps\.pdf</code> p\. 4", rag)
    assert "[1] <code>manuals/intro.md</code>" not in rag  # retrieved but not cited
    assert "F1 0.80" in rag and "contains" in rag
    base = q[q.index('data-mode="base"') : q.index('data-mode="rag"')]
    assert "misses" in base and "refused" in base
    # The question's own markup is text, not HTML.
    assert "Who founded &lt;b&gt;Tessarine&lt;/b&gt;?" in html


def test_a_running_evaluation_reports_progress_as_json_and_shows_unscored_answers(
    alice: User, expert: Expert
) -> None:
    run = EvaluationRun.objects.create(
        team=expert.team, expert=expert, modes=["base"], questions=QUESTIONS[:1], total=1
    )
    client = logged_in(staff(alice))

    assert client.get(f"/training/evaluations/{run.pk}/progress.json").json() == {
        "id": run.pk,
        "status": "queued",
        "done": 0,
        "total": 1,
        "error": "",
        "active": True,
    }
    html = client.get(f"/training/evaluations/{run.pk}/").content.decode()
    assert "Not scored yet." in html and 'id="metrics"' not in html
    assert "The recommendation appears when every answer is scored." in html

    EvaluationRun.objects.filter(pk=run.pk).update(
        status=EvaluationStatus.FAILED, error="GenerationError: boom"
    )
    body = client.get(f"/training/evaluations/{run.pk}/progress.json").json()
    assert body["status"] == "failed" and body["active"] is False and body["error"] == "GenerationError: boom"


# --- exports ------------------------------------------------------------------------------


def test_the_csv_export_has_one_row_per_question_and_mode_with_every_result_field(
    alice: User, finished: EvaluationRun
) -> None:
    resp = logged_in(staff(alice)).get(f"/training/evaluations/{finished.pk}/export.csv")

    assert resp["Content-Type"].startswith("text/csv")
    assert f'filename="evaluation-{finished.pk}.csv"' in resp["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.content.decode())))
    assert [(r["ordinal"], r["mode"]) for r in rows] == [
        ("0", "base"),
        ("0", "rag"),
        ("1", "base"),
        ("1", "rag"),
    ]
    assert set(rows[0]) >= {
        "question",
        "reference",
        "source",
        "answer",
        "contains",
        "f1",
        "rank",
        "retrieved",
        "citations",
        "citation_precision",
        "refused",
        "latency_ms",
        "ttft_ms",
        "tokens",
        "tokens_per_s",
        "error",
    }
    rag = rows[1]
    assert rag["answer"] == "The blue pump is called Kestrel-7 [2]." and rag["rank"] == "2"
    assert rag["contains"] == "True" and float(rag["f1"]) == 0.8
    assert json.loads(rag["retrieved"])[1] == "manuals/pumps.pdf"
    assert json.loads(rag["citations"])[1] == {
        "n": 2,
        "source": "manuals/pumps.pdf",
        "page": 4,
        "cited": True,
    }
    assert rows[0]["rank"] == "" and rows[0]["citation_precision"] == ""
    # A spreadsheet would run this as a formula: it is kept as text.
    assert rows[3]["answer"] == "'" + FORMULA_ANSWER


def test_the_json_export_has_the_run_its_metrics_and_every_result(
    alice: User, finished: EvaluationRun
) -> None:
    resp = logged_in(staff(alice)).get(f"/training/evaluations/{finished.pk}/export.json")

    assert f'filename="evaluation-{finished.pk}.json"' in resp["Content-Disposition"]
    body = json.loads(resp.content)
    assert body["run"]["id"] == finished.pk and body["run"]["expert"]["slug"] == "pumps"
    assert body["run"]["modes"] == ["base", "rag"] and body["run"]["status"] == "succeeded"
    assert body["run"]["created_by"] == "alice" and body["run"]["team"] == "acme"
    assert body["metrics"]["rag"]["containment"] == 1.0
    assert body["recommendation"].startswith("Best here: rag")
    assert body["questions"] == QUESTIONS
    assert len(body["results"]) == 4
    last = body["results"][3]
    assert (last["ordinal"], last["mode"]) == (1, "rag")
    assert last["answer"] == FORMULA_ANSWER  # exact, unlike the CSV
    assert body["results"][1]["retrieved"] == ["manuals/intro.md", "manuals/pumps.pdf", "faq.md"]


# --- the form -----------------------------------------------------------------------------


def _questions_file(lines: list[dict[str, Any]] | None = None) -> SimpleUploadedFile:
    data = "\n".join(json.dumps(q) for q in (lines or QUESTIONS)).encode()
    return SimpleUploadedFile("questions.jsonl", data, content_type="application/jsonl")


def test_the_form_creates_a_run_from_an_uploaded_file_and_queues_it_on_the_gpu_queue(
    alice: User, expert: Expert, broker: dramatiq.Broker, django_capture_on_commit_callbacks: Any
) -> None:
    client = logged_in(staff(alice))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        resp = client.post(
            "/training/evaluations/new",
            {
                "expert": expert.pk,
                "modes": ["base", "rag"],
                "name": "",
                "source": "upload",
                "questions_file": _questions_file(),
            },
        )

    run = EvaluationRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/training/evaluations/{run.pk}/"
    assert run.expert == expert and run.team == expert.team and run.created_by == alice
    assert run.modes == ["base", "rag"] and run.total == 4 and run.status == EvaluationStatus.QUEUED
    assert [q["question"] for q in run.questions] == [q["question"] for q in QUESTIONS]
    assert run.questions[0]["source"] == "pumps.pdf" and run.dataset is None
    assert len(callbacks) == 1
    assert broker.do_qsize("gpu") == 1  # type: ignore[attr-defined]


def test_a_bad_question_file_is_refused_with_the_line_number(alice: User, expert: Expert) -> None:
    bad = SimpleUploadedFile("q.jsonl", b'{"question": "a", "answer": "b"}\n{"question": "only"}\n')
    resp = logged_in(staff(alice)).post(
        "/training/evaluations/new",
        {"expert": expert.pk, "modes": ["base"], "source": "upload", "questions_file": bad},
    )

    assert resp.status_code == 422
    assert "line 2: needs a question and an answer" in resp.content.decode()
    assert not EvaluationRun.objects.exists()


def test_the_adapter_modes_are_offered_only_for_an_expert_with_an_adapter(
    alice: User, expert: Expert
) -> None:
    client = logged_in(staff(alice))
    html = client.get("/training/evaluations/new").content.decode()

    assert re.search(rf'<option value="{expert.pk}"[^>]*data-adapter="no"', html)
    ft = re.search(r'<input type="checkbox" name="modes" value="ft"[^>]*>', html)
    assert ft and "disabled" in ft.group(0) and 'data-needs-adapter="yes"' in ft.group(0)
    base = re.search(r'<input type="checkbox" name="modes" value="base"[^>]*>', html)
    assert base and "disabled" not in base.group(0)

    resp = client.post(
        "/training/evaluations/new",
        {
            "expert": expert.pk,
            "modes": ["rag", "ft"],
            "source": "upload",
            "questions_file": _questions_file(),
        },
    )
    assert resp.status_code == 422 and "ft need an adapter on Pump expert" in resp.content.decode()
    assert not EvaluationRun.objects.exists()

    adapter = Adapter.objects.create(team=expert.team, name="facts", base_model=expert.base_model, path="x")
    Expert.objects.filter(pk=expert.pk).update(adapter=adapter)
    html = client.get("/training/evaluations/new").content.decode()
    ft = re.search(r'<input type="checkbox" name="modes" value="ft"[^>]*>', html)
    assert ft and "disabled" not in ft.group(0)
    assert re.search(rf'<option value="{expert.pk}"[^>]*data-adapter="yes"', html)


def _dataset_with_held_out(team: Team, name: str) -> Dataset:
    dataset = Dataset.objects.create(team=team, name=name, base_model="smollm2-135m-instruct", eval_count=1)
    for ordinal, (split, answer) in enumerate([(Split.TRAIN, "Kestrel-7."), (Split.EVAL, "Signal orange.")]):
        DatasetExample.objects.create(
            dataset=dataset,
            ordinal=ordinal,
            split=split,
            messages=[
                {"role": "user", "content": f"question {ordinal}"},
                {"role": "assistant", "content": answer},
            ],
        )
    return dataset


def test_the_form_takes_the_held_out_split_of_a_dataset_of_the_experts_team(
    alice: User, expert: Expert, django_capture_on_commit_callbacks: Any, broker: dramatiq.Broker
) -> None:
    own = _dataset_with_held_out(expert.team, "facts")
    other_team = team_create(name="Initech", owner=alice)
    other = _dataset_with_held_out(other_team, "initech facts")
    client = logged_in(staff(alice))

    resp = client.post(
        "/training/evaluations/new",
        {"expert": expert.pk, "modes": ["base"], "source": "dataset", "dataset": other.pk},
    )
    assert resp.status_code == 422 and "the expert&#x27;s team" in resp.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            "/training/evaluations/new",
            {
                "expert": expert.pk,
                "modes": ["base"],
                "source": "dataset",
                "dataset": own.pk,
                "name": "held out",
            },
        )
    run = EvaluationRun.objects.get()
    assert resp.status_code == 302 and run.name == "held out" and run.dataset == own
    # Only the held-out example: the adapter trained on the other one.
    assert run.questions == [{"question": "question 1", "answer": "Signal orange.", "source": None}]


def test_the_training_overview_links_to_the_evaluations(alice: User, acme: Team) -> None:
    html = logged_in(staff(alice)).get("/training/").content.decode()

    assert 'href="/training/evaluations/"' in html and 'href="/training/evaluations/new"' in html
