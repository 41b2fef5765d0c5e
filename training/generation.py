"""Datasets built from a knowledge collection: generated Q/A pairs, and RAFT-style rag_ft examples.

For `ft` an adapter learns question → answer. For `rag_ft` it learns to read: each example
is the very prompt the chat builds (the question plus retrieved passages, the source passage
among distractors, sometimes without it) → an answer that cites [n] (RAFT, Zhang et al. 2024).
"""

from __future__ import annotations

import random
import re
import threading

from django.conf import settings
from django.contrib.auth.models import User

from chat.generation import GenerationRequest, GenerationStats, backend_for
from chat.models import DEFAULT_SYSTEM_PROMPT
from chat.prompting import Passage, build_messages
from knowledge.models import Chunk, Collection
from knowledge.selectors import chunk_search

from .datasets import DatasetInvalid, ParsedExample
from .models import Dataset, DatasetSource, Split

QA_PROMPT = (
    "Read the passage and write one question a colleague could ask that the passage answers, "
    "then its short answer taken from the passage. Reply exactly in this form:\n"
    "Q: <question>\nA: <answer>\n\nPassage ({where}):\n{text}"
)
_QA = re.compile(r"Q:\s*(.+?)\s*\n+\s*A:\s*(.+)", re.DOTALL)
NOT_IN_PASSAGES = "The documents do not say."


def qa_from_passage(*, chunk: Chunk, base_model: str) -> tuple[str, str] | None:
    """One question/answer pair written by the chosen model, or None when it wrote no pair."""
    where = chunk.heading_path or chunk.document.title
    request = GenerationRequest(
        base_model=base_model,
        max_new_tokens=120,
        temperature=0.0,
        messages=[{"role": "user", "content": QA_PROMPT.format(where=where, text=chunk.text[:2000])}],
    )
    text = "".join(backend_for(base_model).stream(request, stop=threading.Event(), stats=GenerationStats()))
    match = _QA.search(text)
    if not match:
        return None
    question, answer = match.group(1).strip(), match.group(2).strip().split("\n")[0].strip()
    return (question, answer) if question and answer else None


def dataset_generate_from_collection(
    *,
    collection: Collection,
    name: str,
    base_model: str = "",
    limit: int = 50,
    eval_fraction: float = 0.1,
    seed: int = 0,
    created_by: User | None = None,
) -> Dataset:
    from .services import _dataset_store

    base_model = base_model or settings.DEFAULT_BASE_MODEL
    chunks = list(
        Chunk.objects.filter(collection=collection).select_related("document").order_by("id")[:limit]
    )
    examples: list[ParsedExample] = []
    sources: list[int | None] = []
    skipped = 0
    for chunk in chunks:
        pair = qa_from_passage(chunk=chunk, base_model=base_model)
        if pair is None:
            skipped += 1
            continue
        examples.append(
            ParsedExample(
                line=chunk.pk,
                messages=[{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}],
            )
        )
        sources.append(chunk.pk)
    report = {
        "format": "generated",
        "lines": len(chunks),
        "errors": [],
        "skipped": skipped,
        "generator": base_model,
        "collection": collection.pk,
    }
    return _dataset_store(
        team=collection.team,
        name=name,
        source=DatasetSource.GENERATED,
        examples=examples,
        report=report,
        base_model=base_model,
        eval_fraction=eval_fraction,
        seed=seed,
        created_by=created_by,
        source_chunks=sources,
    )


def _passage(n: int, chunk: Chunk) -> Passage:
    return Passage(
        n=n,
        chunk_id=chunk.pk,
        document_id=chunk.document_id,
        title=chunk.document.title,
        source=chunk.document.source_path,
        page=chunk.page,
        section=chunk.heading_path,
        text=chunk.text,
    )


def raft_examples(
    *,
    dataset: Dataset,
    collection: Collection,
    k: int = 4,
    p_without_source: float = 0.2,
    seed: int = 0,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> list[ParsedExample]:
    """Each example becomes the chat's own RAG prompt → the answer citing its passage."""
    rng = random.Random(seed)
    out: list[ParsedExample] = []
    for ex in dataset.examples.filter(split=Split.TRAIN).select_related("source_chunk__document"):
        question = next(m["content"] for m in reversed(ex.messages) if m["role"] == "user")
        answer = ex.messages[-1]["content"].strip()
        hits = chunk_search(collections=[collection], query=question, k=k + 1).hits
        source = ex.source_chunk
        if source is None:  # an uploaded pair: its source is a passage holding the answer
            source = next((h.chunk for h in hits if answer.lower() in h.chunk.text.lower()), None) or (
                Chunk.objects.filter(collection=collection, text__icontains=answer)
                .select_related("document")
                .first()
            )
        distractors = [h.chunk for h in hits if source is None or h.chunk.pk != source.pk][: k - 1]
        keep_source = source is not None and rng.random() >= p_without_source
        chunks = [*distractors, *([source] if keep_source and source else [])]
        rng.shuffle(chunks)
        passages = [_passage(i, c) for i, c in enumerate(chunks, 1)]
        if keep_source and source is not None:
            n = next(p.n for p in passages if p.chunk_id == source.pk)
            target = f"{answer} [{n}]"
        else:
            target = NOT_IN_PASSAGES
        messages = build_messages(
            system_prompt=system_prompt, question=question, history=[], passages=passages
        )
        out.append(
            ParsedExample(
                line=ex.line or ex.ordinal,
                messages=[
                    *({"role": m["role"], "content": m["content"]} for m in messages),
                    {"role": "assistant", "content": target},
                ],
            )
        )
    if not out:
        raise DatasetInvalid(f"dataset '{dataset.name}' has no training examples to turn into RAG examples")
    return out


def dataset_create_raft(
    *,
    dataset: Dataset,
    collection: Collection,
    name: str = "",
    created_by: User | None = None,
) -> Dataset:
    """A rag_ft dataset from a fact dataset: the adapter learns to read this team's passages."""
    from .services import _dataset_store

    examples = raft_examples(dataset=dataset, collection=collection)
    report = {
        "format": "raft",
        "lines": len(examples),
        "errors": [],
        "from_dataset": dataset.pk,
        "collection": collection.pk,
    }
    return _dataset_store(
        team=dataset.team,
        name=name or f"{dataset.name} (RAG+FT)",
        source=DatasetSource.GENERATED,
        examples=examples,
        report=report,
        base_model=dataset.base_model,
        eval_fraction=0.0,
        seed=dataset.seed,
        created_by=created_by,
    )
