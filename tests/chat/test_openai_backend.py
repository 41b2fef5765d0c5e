"""The `openai` backend against a real OpenAI-compatible server: this product's own /v1."""

from __future__ import annotations

import threading

import pytest

from accounts.services import api_token_create
from chat.generation import GenerationRequest, GenerationStats, backend_for

pytestmark = pytest.mark.slow


def test_the_openai_backend_streams_from_an_openai_compatible_server(
    asgi_server, alice, base_expert, settings
):
    _, raw = api_token_create(user=alice, name="backend")
    settings.GENERATION_BACKENDS = {"remote-plain": "openai"}
    settings.OPENAI_BASE_URL = f"{asgi_server.url}/v1"
    settings.OPENAI_API_KEY = raw
    # The server serves experts by slug: map the base model name to the "plain" expert.
    settings.OPENAI_MODEL_NAMES = {"remote-plain": "plain"}
    backend = backend_for("remote-plain")
    assert backend.name == "openai"
    stats = GenerationStats()
    request = GenerationRequest(
        base_model="remote-plain", messages=[{"role": "user", "content": "Say hello."}], max_new_tokens=12
    )
    text = "".join(backend.stream(request, stop=threading.Event(), stats=stats))
    assert text.strip() and stats.tokens > 0


def test_an_unreachable_server_is_a_clear_error(settings) -> None:
    from chat.generation import GenerationError

    settings.GENERATION_BACKENDS = {"remote": "openai"}
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    request = GenerationRequest(base_model="remote", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(GenerationError) as err:
        list(backend_for("remote").stream(request, stop=threading.Event(), stats=GenerationStats()))
    assert err.value.code == "backend_unreachable"
