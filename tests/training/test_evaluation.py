"""RAG, fine-tuning or both: metrics, and a real run on the demo questions through the worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chat.models import Mode
from chat.services import expert_create
from knowledge.demo.writer import demo_questions
from knowledge.services import collection_create
from tests.chat.conftest import index_demo
from training import metrics
from training.evaluation import EvaluationInvalid, evaluation_create, questions_parse, recommend
from training.models import EvaluationStatus


def test_token_f1_and_containment_ignore_case_punctuation_and_articles() -> None:
    # "torque is 38 n m" against "38 n m": precision 3/5, recall 1
    assert metrics.token_f1("The torque is 38 N·m.", "38 N·m") == pytest.approx(0.75)
    assert metrics.contains("It is covered for 30 months, see [1].", "30 months")
    assert not metrics.contains("It is covered for 300 months.", "30 months")
    assert metrics.token_f1("", "x") == 0.0


def test_retrieval_rank_matches_sources_by_file_name() -> None:
    assert metrics.first_rank(["docs/a.pdf", "demo/hr-policy.pdf"], "hr-policy.pdf") == 2
    assert metrics.first_rank(["a.pdf"], "b.pdf") is None
    assert metrics.citation_precision(["holds 30 months", "other"], "30 months") == 0.5
    assert metrics.citation_precision([], "x") is None


def test_question_files_are_checked_line_by_line() -> None:
    with pytest.raises(EvaluationInvalid, match="line 2"):
        questions_parse(b'{"question": "q", "answer": "a"}\n{"question": "q"}\n')
    assert questions_parse(b'{"question": "q", "answer": 42}\n')[0]["answer"] == "42"


def test_the_recommendation_is_drawn_from_the_numbers() -> None:
    text = recommend(
        {
            "base": {"containment": 0.0, "f1": 0.05, "hit_at_5": None},
            "rag": {"containment": 0.4, "f1": 0.3, "hit_at_5": 0.86},
            "rag_ft": {"containment": 0.5, "f1": 0.34, "hit_at_5": 0.86},
        },
        gpu_minutes=40,
    )
    assert "rag_ft" in text and "86%" in text and "4 points of F1" in text and "40 minutes" in text


@pytest.mark.slow
def test_an_evaluation_of_the_demo_questions_runs_on_the_real_worker(worker, acme, tmp_path: Path) -> None:
    collection = collection_create(team=acme, name="Demo")
    index_demo(collection, tmp_path / "demo")
    expert = expert_create(
        team=acme,
        name="Demo",
        slug="demo-eval",
        collections=[collection],
        mode=Mode.RAG,
        max_new_tokens=48,
        temperature=0.0,
    )
    questions: list[Any] = demo_questions(tmp_path / "demo")
    with pytest.raises(EvaluationInvalid, match="adapter"):
        evaluation_create(expert=expert, questions=questions, modes=["rag", "ft"])
    run = evaluation_create(expert=expert, questions=questions, modes=["base", "rag"])
    deadline = time.monotonic() + 900
    while (
        run.status not in (EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED)
        and time.monotonic() < deadline
    ):
        time.sleep(1)
        run.refresh_from_db()
    assert run.status == EvaluationStatus.SUCCEEDED, run.error
    assert run.results.count() == 2 * len(questions) == run.done
    base, rag = run.metrics["base"], run.metrics["rag"]
    assert base["hit_at_5"] is None and rag["hit_at_5"] >= 0.7
    assert rag["containment"] >= base["containment"]
    assert rag["p50_ms"] > 0 and run.recommendation
