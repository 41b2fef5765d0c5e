from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_ask_prints_the_documented_json(rag_expert) -> None:
    out = StringIO()
    call_command("ask", "How long is the warranty on the pumps?", "--expert", "pumps", "--json", stdout=out)
    last = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(last) == {"answer", "citations", "ttft_ms", "tokens", "tokens_per_s"}
    assert last["answer"] and last["tokens"] > 0 and last["ttft_ms"] > 0
    assert last["citations"][0]["n"] == 1 and {"document", "source", "page"} <= set(last["citations"][0])


def test_ask_over_a_collection_uses_an_adhoc_rag_expert(demo_collection) -> None:
    out = StringIO()
    call_command(
        "ask",
        "What is the price of a shaft seal?",
        "--collection",
        demo_collection.slug,
        "--json",
        stdout=out,
    )
    assert json.loads(out.getvalue().strip().splitlines()[-1])["citations"]


def test_ask_as_another_team_is_refused(rag_expert, charlie) -> None:
    with pytest.raises(CommandError, match="No expert"):
        call_command("ask", "hi", "--expert", "pumps", "--user", "charlie")


def test_the_expert_reads_only_its_own_teams_collections(rag_expert, globex) -> None:
    from chat.pipeline import retrieve
    from chat.services import ExpertInvalid, expert_create
    from knowledge.services import collection_create

    theirs = collection_create(team=globex, name="Globex secrets")
    with pytest.raises(ExpertInvalid, match="own team"):
        expert_create(team=rag_expert.team, name="x", slug="x", collections=[theirs])
    rag_expert.collections.add(theirs)  # attached behind the service's back
    passages, _ = retrieve(rag_expert, "secrets")
    assert theirs.pk not in {p.document_id for p in passages}
