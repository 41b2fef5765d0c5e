"""The operations dashboard: staff only, its numbers limited to the staff user's teams (workers
and queues are global), the JSON the page polls, and the page updating itself in a browser."""

from __future__ import annotations

import re
import socket
import time
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import Team
from chat.models import Conversation, Expert, Message, MessageStatus, Mode, Role
from chat.services import expert_create
from expertsite.heartbeat import heartbeats_by_queue
from knowledge.models import Collection, Document, DocumentStatus
from knowledge.services import collection_create
from knowledge.tasks import document_index_task
from tests.support import LiveServer, logged_in, login, staff
from training.models import Dataset, EvaluationRun, EvaluationStatus, JobStatus, TrainingJob


def document(collection: Collection, name: str, status: str, error: str = "") -> Document:
    return Document.objects.create(
        collection=collection,
        title=name,
        file=f"knowledge/test/{name}",
        sha256=name.ljust(64, "0"),
        size=10,
        source_path=name,
        status=status,
        error=error,
    )


def answer(
    conversation: Conversation, *, ttft_ms: float | None = None, feedback: int = 0, **fields: Any
) -> Message:
    return Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="an answer",
        expert=conversation.expert,
        ttft_ms=ttft_ms,
        feedback=feedback,
        **fields,
    )


def job(team: Team, status: str, error: str = "") -> TrainingJob:
    dataset, _ = Dataset.objects.get_or_create(team=team, name=f"{team.slug} facts", base_model="smollm2")
    return TrainingJob.objects.create(
        team=team,
        dataset=dataset,
        base_model="smollm2",
        status=status,
        error=error,
        finished=timezone.now() if status == JobStatus.FAILED else None,
    )


@pytest.fixture
def acme_expert(acme: Team) -> Expert:
    return expert_create(team=acme, name="Pump expert", slug="pumps", mode=Mode.BASE)


@pytest.fixture
def world(
    alice: User, bob: User, acme: Team, globex: Team, charlie: User, acme_expert: Expert
) -> dict[str, Any]:
    """Acme's documents, chat, jobs and evaluations, and some of Globex's that Acme's staff
    must not see counted."""
    docs = collection_create(team=acme, name="Manuals")
    for i in range(3):
        document(docs, f"ready-{i}.md", DocumentStatus.READY)
    document(docs, "queued.md", DocumentStatus.QUEUED)
    document(docs, "embedding.md", DocumentStatus.EMBEDDING)
    document(docs, "scan.pdf", DocumentStatus.FAILED, error="PDF is encrypted: upload a decrypted copy")
    other = collection_create(team=globex, name="Secret")
    document(other, "globex.pdf", DocumentStatus.FAILED, error="globex's own failure")

    talk = Conversation.objects.create(user=bob, expert=acme_expert, title="pumps")
    Message.objects.create(conversation=talk, role=Role.USER, content="a question")
    for ttft in (100.0, 200.0, 300.0, 400.0):
        answer(talk, ttft_ms=ttft)
    answer(talk, feedback=1)
    answer(talk, feedback=1)
    answer(talk, feedback=-1)
    answer(talk, status=MessageStatus.FAILED, error="generation: out of memory on cuda:0")
    old = answer(talk, ttft_ms=9000.0, feedback=-1)
    # Two days ago: outside the chat window, still in the all-time feedback.
    Message.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=2))

    globex_expert = expert_create(team=globex, name="Globex expert", slug="globex", mode=Mode.BASE)
    theirs = Conversation.objects.create(user=charlie, expert=globex_expert)
    answer(theirs, ttft_ms=5.0, feedback=1)

    job(acme, JobStatus.RUNNING)
    job(acme, JobStatus.QUEUED)
    job(acme, JobStatus.QUEUED)
    job(acme, JobStatus.SUCCEEDED)
    job(acme, JobStatus.FAILED, error="CUDA out of memory: lower the batch size")
    job(globex, JobStatus.FAILED, error="globex job failure")

    older = EvaluationRun.objects.create(
        team=acme, expert=acme_expert, name="older", modes=["base"], status=EvaluationStatus.SUCCEEDED
    )
    EvaluationRun.objects.filter(pk=older.pk).update(created=timezone.now() - timedelta(days=1))
    latest = EvaluationRun.objects.create(
        team=acme,
        expert=acme_expert,
        name="base vs rag",
        modes=["base", "rag"],
        status=EvaluationStatus.SUCCEEDED,
        metrics={"base": {"containment": 0.25, "f1": 0.2}, "rag": {"containment": 0.75, "f1": 0.61}},
        recommendation="Best here: rag.",
        done=8,
        total=8,
    )
    return {"latest": latest}


# --- who gets in --------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_staff_open_the_dashboard_and_anonymous_people_are_sent_to_login(
    alice: User, bob: User, acme: Team
) -> None:
    for url in ["/dashboard/", "/dashboard/data.json"]:
        assert logged_in(bob).get(url).status_code == 403, url
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/"), url
    assert 'href="/dashboard/"' not in logged_in(bob).get("/").content.decode()

    client = logged_in(staff(alice))
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/dashboard/data.json")["Content-Type"] == "application/json"
    assert 'href="/dashboard/"' in client.get("/").content.decode()


# --- the numbers --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_json_counts_the_staff_users_teams_only(
    alice: User, world: dict[str, Any], broker: dramatiq.Broker
) -> None:
    document_index_task.send(10**9)  # waits on the ingest queue: no worker in this test
    data = logged_in(staff(alice)).get("/dashboard/data.json").json()

    assert data["teams"] == ["Acme"]
    assert data["documents"] == {"queued": 1, "parsing": 0, "embedding": 1, "ready": 3, "failed": 1}
    assert data["documents_total"] == 6
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["ingest"]["depth"] == 1 and queues["gpu"]["depth"] == 0
    assert data["ingest_depth"] == 1

    assert data["jobs"]["running"] == 1 and data["jobs"]["queued"] == 2 and data["jobs"]["failed"] == 1
    [failure] = data["jobs"]["failures"]
    assert failure["error"] == "CUDA out of memory: lower the batch size"
    assert failure["url"] == f"/training/jobs/{failure['id']}/"

    chat = data["chat"]
    # Every assistant answer of the last day; the one from two days ago and Globex's are out.
    assert chat["answers_24h"] == 8 and len(chat["per_hour"]) == 24
    # All in this hour (or the last one, should the hour turn while the test runs).
    assert sum(h["count"] for h in chat["per_hour"][-2:]) == 8
    assert chat["ttft_n"] == 4
    assert chat["ttft_p50_ms"] == 250.0 and chat["ttft_p95_ms"] == 385.0  # interpolated percentiles
    assert data["feedback"] == {"up": 2, "down": 2, "up_24h": 2, "down_24h": 1}

    [failed_message] = data["errors"]["messages"]
    assert failed_message["error"] == "generation: out of memory on cuda:0"
    assert failed_message["expert"] == "Pump expert"
    [failed_document] = data["errors"]["documents"]
    assert failed_document["title"] == "scan.pdf"
    assert failed_document["error"] == "PDF is encrypted: upload a decrypted copy"

    [evaluation] = data["evaluations"]  # the newest of the expert's two runs
    assert evaluation["run_id"] == world["latest"].pk and evaluation["recommendation"] == "Best here: rag."
    assert evaluation["scores"] == [
        {"mode": "base", "containment": 0.25, "f1": 0.2},
        {"mode": "rag", "containment": 0.75, "f1": 0.61},
    ]
    generation = data["generation"]
    assert generation["backend"] == settings.GENERATION_BACKEND and generation["local_dtype"]
    served = {r["base_model"]: r["backend"] for r in generation["resolved"]}
    assert set(served) == set(settings.BASE_MODELS) and served[settings.DEFAULT_BASE_MODEL] in (
        "local",
        "llamacpp",
        "openai",
    )
    assert "globex" not in str(data).lower()


@pytest.mark.django_db
def test_the_page_renders_the_same_data_with_its_charts(alice: User, world: dict[str, Any]) -> None:
    html = logged_in(staff(alice)).get("/dashboard/").content.decode()

    assert re.search(r'data-field="documents.failed">1<', html)
    assert re.search(r'data-field="jobs.queued">2<', html)
    assert re.search(r'data-field="chat.ttft_p95_ms" data-format="ms">385 ms<', html)
    assert "CUDA out of memory: lower the batch size" in html
    assert "PDF is encrypted: upload a decrypted copy" in html
    assert "generation: out of memory on cuda:0" in html
    bars = re.findall(
        r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" data-count="(\d+)"', html
    )
    assert len(bars) == 24 and sum(int(count) for _, count in bars) == 8
    assert max(float(height) for height, _ in bars) > 0
    assert re.search(r'<tr data-mode="rag">.*?<rect width="0.75" height="1">.*?75%', html, re.S)
    assert "Best here: rag." in html
    assert "globex" not in html.lower()


def test_the_queues_show_the_live_workers_and_their_hosts(alice: User, worker: dramatiq.Worker) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        beats = heartbeats_by_queue()
        if beats["ingest"] and beats["gpu"]:
            break
        time.sleep(0.2)
    data = logged_in(staff(alice)).get("/dashboard/data.json").json()

    queues = {q["queue"]: q for q in data["queues"]}
    for name in ("ingest", "gpu"):
        assert queues[name]["workers"] >= 1, queues
        assert socket.gethostname() in queues[name]["hosts"]
        assert queues[name]["error"] == ""


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.browser
def test_the_dashboard_updates_itself_without_a_reload(
    asgi_server: LiveServer, page: Any, alice: User, acme: Team
) -> None:
    staff(alice)
    collection = collection_create(team=acme, name="Manuals")
    document(collection, "fine.md", DocumentStatus.READY)
    login(page, asgi_server, "alice", "alice-pass-123")
    page.goto(f"{asgi_server.url}/dashboard/")
    failed = page.locator('[data-field="documents.failed"]')
    assert failed.inner_text() == "0"
    page.evaluate("window.__sameDocument = true")

    document(collection, "broken.pdf", DocumentStatus.FAILED, error="PDF is encrypted")

    # The next poll (every 5 s) brings it: the count, and the reason in the failures table.
    page.wait_for_function(
        "document.querySelector('[data-field=\"documents.failed\"]').textContent === '1'", timeout=20_000
    )
    assert page.locator("#document-errors").inner_text().count("PDF is encrypted") == 1
    assert page.locator("#live").inner_text() == "live"
    assert page.evaluate("window.__sameDocument") is True
