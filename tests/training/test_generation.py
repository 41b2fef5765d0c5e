"""Datasets from a collection: generated Q/A pairs keep their passage; RAFT examples read passages."""

from __future__ import annotations

import pytest

from chat.prompting import RAG_RULES
from knowledge.models import Chunk
from tests.chat.conftest import index_demo
from training import generation
from training.generation import NOT_IN_PASSAGES, dataset_create_raft, dataset_generate_from_collection
from training.services import dataset_create_from_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(acme, tmp_path):
    from knowledge.services import collection_create

    collection = collection_create(team=acme, name="Demo")
    index_demo(collection, tmp_path / "demo")
    return collection


def test_generated_pairs_keep_their_source_passage(demo, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real packaged model writes the pairs; a pair it fails to format is skipped and counted.
    dataset = dataset_generate_from_collection(collection=demo, name="gen", limit=4, eval_fraction=0.0)
    report = dataset.report
    assert report["lines"] == 4 and dataset.train_count + report["skipped"] == 4
    for example in dataset.examples.all():
        assert example.source_chunk_id is not None
        assert example.messages[0]["role"] == "user" and example.messages[-1]["content"]


def test_raft_examples_are_the_chat_prompt_with_the_source_among_distractors(demo) -> None:
    facts = dataset_create_from_upload(
        team=demo.team,
        name="facts",
        filename="f.jsonl",
        eval_fraction=0.0,
        data=b'{"question": "How long is a new Corvane pump covered by the standard warranty?", '
        b'"answer": "30 months"}\n' * 10,
    )
    raft = dataset_create_raft(dataset=facts, collection=demo)
    answers = [e.messages[-1]["content"] for e in raft.examples.all()]
    cited = [a for a in answers if a != NOT_IN_PASSAGES]
    assert cited and all(a.startswith("30 months [") for a in cited)
    first = raft.examples.first()
    assert first is not None
    assert RAG_RULES in first.messages[0]["content"] and "<passage" in first.messages[1]["content"]


def test_a_model_reply_without_a_pair_is_skipped(demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generation, "qa_from_passage", lambda **kw: None)
    from training.datasets import DatasetInvalid

    with pytest.raises(DatasetInvalid, match="no usable examples"):
        dataset_generate_from_collection(collection=demo, name="none", limit=2)
    assert Chunk.objects.filter(collection=demo).exists()
