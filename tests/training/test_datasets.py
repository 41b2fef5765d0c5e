from __future__ import annotations

import json

import pytest

from tests.training.conftest import facts_jsonl
from training.datasets import DatasetInvalid, parse_csv, parse_jsonl, split_indices
from training.services import dataset_create_from_upload


def test_every_supported_shape_becomes_chat_messages() -> None:
    data = "\n".join(
        [
            json.dumps(
                {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]}
            ),
            json.dumps({"question": "Q2", "answer": "A2"}),
            json.dumps({"instruction": "Translate", "input": "Hallo", "output": "Hello"}),
        ]
    ).encode()
    report = parse_jsonl(data)
    assert report.errors == []
    assert [e.messages[-1]["content"] for e in report.examples] == ["A1", "A2", "Hello"]
    assert report.examples[2].messages[0]["content"] == "Translate\n\nHallo"


def test_bad_lines_are_reported_by_number_and_the_rest_kept() -> None:
    data = (
        b'{"question": "Q", "answer": "A"}\n{broken\n{"question": "Q"}\n'
        b'{"question": "Q", "answer": "  "}\n[1]\n'
    )
    report = parse_jsonl(data)
    assert len(report.examples) == 1
    errors = {e["line"]: e["error"] for e in report.errors}
    assert "bad JSON" in errors[2] and "missing field 'answer'" in errors[3]
    assert "answer is empty" in errors[4] and "JSON object" in errors[5]


def test_over_long_examples_are_refused() -> None:
    report = parse_jsonl(json.dumps({"question": "Q", "answer": "x" * 30_000}).encode())
    assert report.examples == [] and "limit" in report.errors[0]["error"]


def test_csv_with_a_column_mapping() -> None:
    data = b"Frage;Antwort\nWie heisst die Pumpe?;Kestrel-7\nLeer;\n"
    report = parse_csv(data, {"question": "Frage", "answer": "Antwort"})
    assert [e.messages[-1]["content"] for e in report.examples] == ["Kestrel-7"]
    assert report.errors[0]["line"] == 3
    with pytest.raises(DatasetInvalid, match="Frage"):
        parse_csv(data)


def test_split_is_seeded_and_a_too_small_dataset_is_refused() -> None:
    assert split_indices(10, eval_fraction=0.2, seed=1) == split_indices(10, eval_fraction=0.2, seed=1)
    train, evals = split_indices(10, eval_fraction=0.2, seed=1)
    assert len(evals) == 2 and sorted(train + evals) == list(range(10))
    with pytest.raises(DatasetInvalid, match="too small to split"):
        split_indices(1, eval_fraction=0.1, seed=0)
    assert split_indices(1, eval_fraction=0, seed=0) == ([0], [])


@pytest.mark.django_db
def test_an_upload_keeps_good_lines_reports_bad_ones_and_counts_tokens(acme) -> None:
    dataset = dataset_create_from_upload(
        team=acme,
        name="facts",
        data=facts_jsonl(['{"oops', '{"question": "q", "answer": ""}']),
        filename="facts.jsonl",
        eval_fraction=0.25,
    )
    assert dataset.train_count + dataset.eval_count == 12 and dataset.eval_count == 3
    assert [e["line"] for e in dataset.report["errors"]] == [13, 14]
    tokens = dataset.report["tokens"]
    assert 10 < tokens["min"] <= tokens["mean"] <= tokens["max"] < 200 and tokens["total"] > 0
    assert dataset.examples.filter(split="eval").count() == 3
