"""Any OpenAI-compatible server (vLLM with --enable-lora, llama.cpp server, Ollama)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils.text import slugify

from .base import GenerationError, GenerationRequest, GenerationStats


def served_model_name(request: GenerationRequest) -> str:
    """The adapter maps to its served name (vLLM: --lora-modules NAME=PATH), else the base's."""
    if request.adapter is not None:
        return slugify(request.adapter.name) or f"adapter-{request.adapter.id}"
    return settings.OPENAI_MODEL_NAMES.get(request.base_model, request.base_model)


class OpenAIBackend:
    name = "openai"

    def queue_key(self, request: GenerationRequest) -> str:
        # The server batches on its own; our queue only bounds how many we send at once.
        return f"openai:{request.base_model}"

    def stream(
        self, request: GenerationRequest, *, stop: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        import openai

        client = openai.OpenAI(
            base_url=settings.OPENAI_BASE_URL, api_key=settings.OPENAI_API_KEY or "none", timeout=120
        )
        started = time.perf_counter()
        first: float | None = None
        try:
            response: Any = client.chat.completions.create(  # type: ignore[call-overload]
                model=served_model_name(request),
                messages=list(request.messages),  # type: ignore[arg-type]
                max_tokens=request.max_new_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            with response:
                for chunk in response:
                    if stop.is_set():
                        break
                    if getattr(chunk, "usage", None):
                        stats.prompt_tokens = chunk.usage.prompt_tokens or 0
                        stats.tokens = chunk.usage.completion_tokens or stats.tokens
                    for choice in chunk.choices or []:
                        piece = choice.delta.content or ""
                        if piece:
                            if first is None:
                                first = time.perf_counter()
                                stats.prefill_ms = (first - started) * 1000
                            stats.tokens += 0 if getattr(chunk, "usage", None) else 1
                            yield piece
        except openai.APIConnectionError as exc:
            raise GenerationError("backend_unreachable", f"{settings.OPENAI_BASE_URL}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise GenerationError("backend_error", f"{exc.status_code}: {exc.message}") from exc
        stats.decode_s = time.perf_counter() - (first or started)
