"""What every generation backend offers the pipeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from chat.prompting import ChatMessage


class GenerationError(Exception):
    """A request the backend cannot serve; `code` goes into the client's error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AdapterRef:
    id: int
    name: str
    path: str  # absolute peft directory
    gguf_path: str = ""


@dataclass
class GenerationRequest:
    base_model: str
    messages: list[ChatMessage]
    max_new_tokens: int = 256
    temperature: float = 0.0
    adapter: AdapterRef | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    tokens: int = 0
    prompt_ms: float = 0.0  # template + tokenization
    prefill_ms: float = 0.0  # generation start to first token
    decode_s: float = 0.0  # first token to last
    extra: dict[str, object] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def stream(
        self, request: GenerationRequest, *, stop: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        """Yield text pieces as they are generated; runs in a worker thread.

        Must return soon after `stop` is set, and fill `stats` as it goes.
        """
        ...

    def queue_key(self, request: GenerationRequest) -> str:
        """Requests with the same key are served one at a time, in arrival order."""
        ...
