"""The chat page: server-rendered history and citation links, then the live chat in a real Chromium."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Team
from chat.models import Conversation, Expert, Message, MessageStatus, Mode, Role
from chat.services import conversation_start, expert_create
from knowledge.models import Chunk
from tests.support import LiveServer, logged_in, login

QUESTION = "How long is the warranty on the pumps?"


def first_chunk(expert: Expert) -> Chunk:
    chunk = (
        Chunk.objects.filter(collection__in=expert.collections.all())
        .order_by("document_id", "ordinal")
        .first()
    )
    assert chunk is not None
    return chunk


def answered_conversation(user: Any, expert: Expert, chunk: Chunk) -> Conversation:
    conversation = conversation_start(user=user, expert=expert, title="Warranty")
    Message.objects.create(conversation=conversation, role=Role.USER, content=QUESTION)
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content="Two years [1].",
        status=MessageStatus.INTERRUPTED,
        feedback=-1,
        citations=[
            {
                "n": 1,
                "chunk": chunk.pk,
                "document": chunk.document_id,
                "title": "Warranty terms",
                "source": "warranty.md",
                "page": None,
                "section": "Pumps",
                "cited": True,
            }
        ],
    )
    return conversation


# --- the page as the server renders it ------------------------------------------------------


def test_a_conversation_page_renders_its_messages_citations_and_feedback(alice, rag_expert) -> None:
    chunk = first_chunk(rag_expert)
    conversation = answered_conversation(alice, rag_expert, chunk)

    resp = logged_in(alice).get(f"/chat/c/{conversation.pk}/")

    assert resp.status_code == 200
    html = resp.content.decode()
    assert QUESTION in html and "Two years [1]." in html
    assert f'<a class="citation cited" data-n="1" href="/chat/cite/{chunk.pk}/"' in html
    assert "[1] Warranty terms — Pumps" in html
    assert '<span class="badge interrupted">interrupted</span>' in html
    assert 'data-value="-1" aria-label="Bad answer" title="Bad answer" aria-pressed="true"' in html
    # The expert is fixed once the conversation exists; the list marks the open one.
    assert re.search(r'<select id="expert" disabled>', html)
    assert f'data-id="{conversation.pk}" title="Pump expert" class="current"' in html


def test_model_output_is_escaped_on_the_page(alice, base_expert) -> None:
    conversation = conversation_start(user=alice, expert=base_expert, title="<b>x</b>")
    Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, content="<img src=x onerror=alert(1)>"
    )

    html = logged_in(alice).get(f"/chat/c/{conversation.pk}/").content.decode()

    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>x</b>" not in html


def test_a_citation_redirects_to_the_passage_in_its_document(alice, rag_expert) -> None:
    chunk = first_chunk(rag_expert)

    resp = logged_in(alice).get(f"/chat/cite/{chunk.pk}/")

    assert resp.status_code == 302
    assert resp["Location"] == f"/knowledge/documents/{chunk.document_id}/#p{chunk.ordinal}"
    assert logged_in(alice).get("/chat/cite/999999999/").status_code == 404


def test_the_chat_needs_a_login(client) -> None:
    resp = client.get("/chat/")
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")


# --- the live chat in a browser -------------------------------------------------------------


def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.1)


def record_frames(page: Any) -> list[dict[str, Any]]:
    """Every frame the server sends the page, in order."""
    frames: list[dict[str, Any]] = []
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))
    )
    return frames


def open_chat(page: Any, server: LiveServer, user: str, password: str) -> None:
    login(page, server, user, password)
    page.goto(f"{server.url}/chat/")
    page.wait_for_selector("#link.ready")


def ask(page: Any, expert: str, text: str) -> Any:
    page.select_option("#expert", expert)
    page.fill("#input", text)
    page.press("#input", "Enter")
    return page.locator(".msg.assistant").last


@pytest.mark.browser
def test_an_answer_streams_in_with_sources_that_open_the_passage(
    asgi_server, page, alice, rag_expert
) -> None:
    frames = record_frames(page)
    open_chat(page, asgi_server, "alice", "alice-pass-123")

    bubble = ask(page, "pumps", QUESTION)
    page.wait_for_selector('.msg.assistant[data-status="complete"]', timeout=120_000)

    answer = bubble.locator(".text").text_content()
    tokens = [f["text"] for f in frames if f["type"] == "token"]
    assert answer.strip() and len(tokens) > 1 and answer == "".join(tokens)
    citations = bubble.locator("a.citation")
    assert citations.count() >= 1
    href = citations.first.get_attribute("href")
    assert href and re.fullmatch(r"/chat/cite/\d+/", href)
    assert citations.first.get_attribute("target") == "_blank"

    chunk = Chunk.objects.get(pk=int(href.split("/")[-2]))
    with page.context.expect_page() as opened:
        citations.first.click()
    source = opened.value
    source.wait_for_load_state()
    assert source.url.endswith(f"/knowledge/documents/{chunk.document_id}/#p{chunk.ordinal}")
    assert source.locator(f"#p{chunk.ordinal}").inner_text().strip()
    resp = page.request.get(asgi_server.url + href)
    assert resp.status == 200

    conversation = Conversation.objects.get(user=alice)
    assert page.url.endswith(f"/chat/c/{conversation.pk}/")
    current = page.locator("#conversations a.current")
    assert current.get_attribute("href") == f"/chat/c/{conversation.pk}/"
    assert page.locator("#conversations a").first.get_attribute("data-id") == str(conversation.pk)
    assert page.locator("#expert").is_disabled()

    page.goto(f"{asgi_server.url}/chat/c/{conversation.pk}/")
    assert page.locator(".msg.user .text").inner_text() == QUESTION
    reloaded = page.locator(".msg.assistant")
    assert reloaded.get_attribute("data-status") == "complete"
    assert reloaded.locator(".text").text_content() == answer
    assert reloaded.locator("a.citation").count() == citations.count()


@pytest.mark.browser
def test_feedback_is_saved_and_shown(asgi_server, page, alice, base_expert) -> None:
    open_chat(page, asgi_server, "alice", "alice-pass-123")
    bubble = ask(page, "plain", "Say hello.")
    page.wait_for_selector('.msg.assistant[data-status="complete"]', timeout=120_000)

    bubble.get_by_role("button", name="Good answer").click()
    page.wait_for_selector('.msg.assistant button.fb[data-value="1"][aria-pressed="true"]')
    message = Message.objects.get(role=Role.ASSISTANT, conversation__user=alice)
    assert message.feedback == 1

    bubble.get_by_role("button", name="Bad answer").click()
    bubble.locator(".why input").fill("Too short")
    bubble.locator(".why button").click()
    page.wait_for_selector('.msg.assistant button.fb[data-value="-1"][aria-pressed="true"]')
    assert bubble.locator('button.fb[data-value="1"]').get_attribute("aria-pressed") == "false"
    eventually(
        lambda: Message.objects.filter(pk=message.pk, feedback=-1, feedback_comment="Too short").exists()
    )

    page.reload()
    assert page.locator('button.fb[data-value="-1"]').get_attribute("aria-pressed") == "true"


@pytest.mark.browser
def test_markers_in_a_saved_answer_link_to_their_sources_as_plain_text(
    asgi_server, page, alice, base_expert
) -> None:
    conversation = conversation_start(user=alice, expert=base_expert, title="Markers")
    citation = {
        "n": 2,
        "chunk": 77,
        "document": 5,
        "title": "Manual",
        "source": "manual.pdf",
        "page": 3,
        "section": "",
        "cited": True,
    }
    Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        citations=[citation],
        content="<img src=x onerror=alert(1)> See [2], not [9].",
    )
    login(page, asgi_server, "alice", "alice-pass-123")
    page.goto(f"{asgi_server.url}/chat/c/{conversation.pk}/")

    text = page.locator(".msg.assistant .text")
    assert text.locator("img").count() == 0
    assert text.text_content() == "<img src=x onerror=alert(1)> See [2], not [9]."
    refs = text.locator("a.cite-ref")
    assert refs.count() == 1 and refs.first.inner_text() == "[2]"
    assert refs.first.get_attribute("href") == "/chat/cite/77/"
    assert page.locator("a.citation.cited").inner_text() == "[2] Manual — page 3"


@pytest.mark.browser
def test_stop_ends_a_long_answer_as_interrupted(asgi_server, page, alice, acme: Team) -> None:
    expert_create(
        team=acme, name="Storyteller", slug="story", mode=Mode.BASE, temperature=0.0, max_new_tokens=400
    )
    open_chat(page, asgi_server, "alice", "alice-pass-123")

    ask(page, "story", "Write a long, detailed story about an engineer who repairs pumps on a ship.")
    page.wait_for_selector('.msg.assistant[data-status="streaming"]', timeout=120_000)
    assert page.locator("#stop").is_visible()
    page.click("#stop")
    bubble = page.locator('.msg.assistant[data-status="interrupted"]')
    bubble.wait_for(timeout=30_000)

    assert bubble.locator(".badge.interrupted").is_visible()
    assert page.locator("#stop").is_hidden() and page.locator("#send").is_enabled()
    message = Message.objects.get(role=Role.ASSISTANT, conversation__user=alice)
    assert message.status == MessageStatus.INTERRUPTED
    assert 0 < message.tokens < 400 and message.content

    page.reload()
    assert page.locator('.msg.assistant[data-status="interrupted"] .badge.interrupted').is_visible()


@pytest.mark.browser
def test_another_team_cannot_pick_the_expert_or_open_the_conversation(
    asgi_server, page, alice, charlie, globex: Team, rag_expert
) -> None:
    chunk = first_chunk(rag_expert)
    conversation = answered_conversation(alice, rag_expert, chunk)
    open_chat(page, asgi_server, "charlie", "charlie-pass-123")

    assert page.locator('#expert option[value="pumps"]').count() == 0
    assert page.locator("#conversations a").count() == 0
    resp = page.goto(f"{asgi_server.url}/chat/c/{conversation.pk}/")
    assert resp is not None and resp.status == 404
    resp = page.goto(f"{asgi_server.url}/chat/cite/{chunk.pk}/")
    assert resp is not None and resp.status == 404


@pytest.mark.browser
def test_an_error_is_shown_in_place_and_the_input_stays_usable(asgi_server, page, alice, base_expert) -> None:
    open_chat(page, asgi_server, "alice", "alice-pass-123")

    ask(page, "plain", "x" * 4001)
    error = page.locator('.msg-error[data-code="message_too_long"]')
    error.wait_for()

    assert "4000 characters" in error.inner_text()
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(180, 35, 24)"  # --bad
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_hidden()
    assert page.locator("#input").input_value() == "x" * 4001  # given back to fix
    assert not Conversation.objects.filter(user=alice).exists()

    page.fill("#input", "Say hello.")
    page.press("#input", "Enter")
    page.wait_for_selector('.msg.assistant[data-status="complete"]', timeout=120_000)
    assert page.locator(".msg.assistant .text").inner_text().strip()
