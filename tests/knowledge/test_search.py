from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge.demo.writer import demo_questions
from knowledge.models import Chunk, Collection
from knowledge.selectors import chunk_search, chunk_search_for_user
from tests.knowledge.conftest import ingest_inline

pytestmark = pytest.mark.django_db


@pytest.fixture
def indexed_handbook(handbook: Collection, demo_dir: Path) -> Collection:
    for path in sorted(demo_dir.iterdir()):
        if path.suffix != ".jsonl":
            ingest_inline(handbook, path.name, path.read_bytes())
    return handbook


def test_hybrid_search_finds_the_source_of_most_demo_answers(
    indexed_handbook: Collection, demo_dir: Path
) -> None:
    questions = demo_questions(demo_dir)
    found = 0
    for q in questions:
        hits = chunk_search(collections=[indexed_handbook], query=q["question"], k=5).hits
        found += any(h.chunk.document.source_path == q["source"] for h in hits)
    assert found / len(questions) >= 0.75, f"{found}/{len(questions)}"


def test_modes_rank_differently_and_fulltext_alone_needs_words(indexed_handbook: Collection) -> None:
    vec = chunk_search(collections=[indexed_handbook], query="zzqx nonsense", k=3, mode="vector").hits
    fts = chunk_search(collections=[indexed_handbook], query="zzqx nonsense", k=3, mode="fulltext").hits
    assert len(vec) == 3 and fts == []
    assert all(h.fulltext_rank is None for h in vec)


def test_the_fulltext_arm_ranks_no_more_matches_than_its_cap(handbook: Collection, settings) -> None:
    for i in range(6):
        ingest_inline(handbook, f"{i}.txt", f"Impeller note {i}: the impeller turns.".encode())
    ids = [handbook.pk]
    everything = Chunk.objects.hybrid_search(
        embedding=None, text="impeller", collection_ids=ids, k=10, mode="fulltext"
    )
    capped = Chunk.objects.hybrid_search(
        embedding=None, text="impeller", collection_ids=ids, k=10, mode="fulltext", fulltext_max_matches=2
    )
    assert len(everything) == 6 and len(capped) == 2
    settings.SEARCH_FULLTEXT_MAX_MATCHES = 3
    assert len(chunk_search(collections=[handbook], query="impeller", k=10, mode="fulltext").hits) == 3


def test_a_document_filter_keeps_to_that_document(indexed_handbook: Collection) -> None:
    doc = indexed_handbook.documents.get(source_path__endswith=".csv")
    hits = chunk_search(collections=[indexed_handbook], query="price", k=5, document_ids=[doc.pk]).hits
    assert hits and {h.chunk.document_id for h in hits} == {doc.pk}


def test_a_member_of_another_team_never_sees_these_passages(
    indexed_handbook: Collection, globex_notes: Collection, alice, charlie
) -> None:
    ingest_inline(globex_notes, "secret.md", b"# Secret\n\nThe Globex launch code is 7741.\n")
    mine = chunk_search_for_user(user=charlie, query="launch code", k=10).hits
    assert mine and {h.chunk.collection_id for h in mine} == {globex_notes.pk}
    theirs = chunk_search_for_user(user=alice, query="Globex launch code", k=10).hits
    assert globex_notes.pk not in {h.chunk.collection_id for h in theirs}


def test_search_command_prints_the_documented_json(indexed_handbook: Collection) -> None:
    out = StringIO()
    call_command(
        "search",
        "How long is the warranty?",
        "--collection",
        indexed_handbook.slug,
        "-k",
        "3",
        "--json",
        stdout=out,
    )
    last = json.loads(out.getvalue().strip().splitlines()[-1])
    assert len(last["results"]) == 3 and last["ms"] > 0
    assert set(last["results"][0]) == {"document", "title", "source", "page", "section", "score", "text"}


def test_search_command_as_a_user_of_another_team_is_refused(indexed_handbook: Collection, charlie) -> None:
    with pytest.raises(CommandError, match="No collection"):
        call_command("search", "warranty", "--collection", indexed_handbook.slug, "--user", "charlie")


def test_every_chunk_has_an_embedding_and_a_search_vector(indexed_handbook: Collection) -> None:
    assert not Chunk.objects.filter(collection=indexed_handbook, embedding__isnull=True).exists()
    assert not Chunk.objects.filter(collection=indexed_handbook, search__isnull=True).exists()
