"""The official `openai` client against /v1 on the real server."""

from __future__ import annotations

import openai
import pytest

from accounts.services import api_token_create
from chat.models import Message, MessageStatus

pytestmark = [pytest.mark.slow]


@pytest.fixture
def client(asgi_server, alice) -> openai.OpenAI:
    _, raw = api_token_create(user=alice, name="editor plugin")
    return openai.OpenAI(base_url=f"{asgi_server.url}/v1", api_key=raw, max_retries=0, timeout=120)


def test_models_lists_the_experts_the_user_may_use(client, rag_expert, base_expert) -> None:
    assert {m.id for m in client.models.list()} == {"pumps", "plain"}


def test_a_completion_answers_with_citations(client, rag_expert) -> None:
    resp = client.chat.completions.create(
        model="pumps",
        messages=[{"role": "user", "content": "How long is the warranty on the pumps?"}],
        max_tokens=24,
    )
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    citations = resp.model_extra["citations"]
    assert citations and citations[0]["source"].endswith((".docx", ".md", ".txt", ".pdf", ".csv", ".html"))
    assert Message.objects.filter(role="assistant", status=MessageStatus.COMPLETE).count() == 1


def test_streaming_yields_deltas_then_a_finish_reason(client, base_expert) -> None:
    stream = client.chat.completions.create(
        model="plain",
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        max_tokens=16,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert "citations" in chunks[0].model_extra


def test_unknown_or_foreign_models_and_bad_tokens_get_openai_errors(
    asgi_server, client, charlie, globex
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    bad = openai.OpenAI(base_url=f"{asgi_server.url}/v1", api_key="es_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="plain", messages=[])
