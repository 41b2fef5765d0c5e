"""Question → retrieve → prompt → generate: one pipeline for the chat, `ask`, the API and evaluation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from knowledge.selectors import chunk_search

from .generation import AdapterRef, GenerationError, GenerationRequest, GenerationStats, backend_for
from .models import Expert, Mode
from .prompting import ChatMessage, Passage, build_messages
from .scheduler import queue_for


@dataclass
class Prepared:
    expert: Expert
    mode: str
    request: GenerationRequest
    passages: list[Passage] | None
    retrieval_ms: float = 0.0


@dataclass
class Answer:
    text: str
    stats: GenerationStats
    ttft_ms: float
    tokens_per_s: float | None
    stopped: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def adapter_ref(expert: Expert) -> AdapterRef | None:
    adapter = expert.adapter
    if adapter is None:
        return None
    return AdapterRef(
        id=adapter.pk,
        name=adapter.name,
        path=str(Path(settings.MEDIA_ROOT) / adapter.path),
        gguf_path=str(Path(settings.MEDIA_ROOT) / adapter.gguf_path) if adapter.gguf_path else "",
    )


def retrieve(expert: Expert, question: str, *, k: int | None = None) -> tuple[list[Passage], float]:
    # The expert reads only collections of its own team, whatever was attached to it.
    adhoc = getattr(expert, "_adhoc_collections", None)
    collections = adhoc if adhoc is not None else list(expert.collections.filter(team_id=expert.team_id))
    result = chunk_search(collections=collections, query=question, k=k or expert.top_k)
    passages = [
        Passage(
            n=i,
            chunk_id=h.chunk.pk,
            document_id=h.chunk.document_id,
            title=h.chunk.document.title,
            source=h.chunk.document.source_path,
            page=h.chunk.page,
            section=h.chunk.heading_path,
            text=h.chunk.text,
        )
        for i, h in enumerate(result.hits, 1)
    ]
    return passages, result.embed_ms + result.sql_ms


def answer_prepare(
    *, expert: Expert, question: str, history: list[ChatMessage] | None = None, mode: str | None = None
) -> Prepared:
    """Retrieval and the prompt (sync: database and embedding work)."""
    mode = mode or expert.mode
    adapter = adapter_ref(expert) if mode in (Mode.FT, Mode.RAG_FT) else None
    if mode in (Mode.FT, Mode.RAG_FT) and adapter is None:
        raise GenerationError("no_adapter", f"expert '{expert.slug}' has no adapter for mode {mode}")
    passages: list[Passage] | None = None
    retrieval_ms = 0.0
    if mode in (Mode.RAG, Mode.RAG_FT):
        passages, retrieval_ms = retrieve(expert, question)
    turns = (history or [])[-2 * settings.CHAT_HISTORY_TURNS :] if settings.CHAT_HISTORY_TURNS else []
    messages = build_messages(
        system_prompt=expert.system_prompt, question=question, history=turns, passages=passages
    )
    request = GenerationRequest(
        base_model=expert.base_model,
        messages=messages,
        max_new_tokens=expert.max_new_tokens,
        temperature=expert.temperature,
        adapter=adapter,
    )
    return Prepared(expert=expert, mode=mode, request=request, passages=passages, retrieval_ms=retrieval_ms)


def _finish(
    text: str, stats: GenerationStats, started: float, first: float | None, stopped: bool, prepared: Prepared
) -> Answer:
    ttft_ms = ((first or time.perf_counter()) - started) * 1000 + prepared.retrieval_ms
    rate = stats.tokens / stats.decode_s if stats.decode_s > 0 and stats.tokens > 1 else None
    return Answer(
        text=text,
        stats=stats,
        ttft_ms=ttft_ms,
        tokens_per_s=rate,
        stopped=stopped,
        timings={
            "retrieval_ms": prepared.retrieval_ms,
            "prompt_ms": stats.prompt_ms,
            "prefill_ms": stats.prefill_ms,
        },
    )


def answer_collect(prepared: Prepared, *, on_piece: Callable[[str], None] | None = None) -> Answer:
    """Generate in this thread (CLI, evaluation worker): no queue, this process is alone."""
    stats = GenerationStats()
    backend = backend_for(prepared.request.base_model)
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    for piece in backend.stream(prepared.request, stop=threading.Event(), stats=stats):
        first = first or time.perf_counter()
        parts.append(piece)
        if on_piece:
            on_piece(piece)
    return _finish("".join(parts), stats, started, first, False, prepared)


class Streamed:
    """The async side of one generation: pieces as they come, the Answer once done."""

    def __init__(self, prepared: Prepared, *, stop: threading.Event | None = None) -> None:
        self.prepared = prepared
        self.stop = stop or threading.Event()
        self.answer: Answer | None = None

    async def pieces(self, on_queued: Callable[[int], object] | None = None) -> AsyncIterator[str]:
        backend = backend_for(self.prepared.request.base_model)
        queue = queue_for(backend.queue_key(self.prepared.request))

        async def tell(position: int) -> None:
            if on_queued is not None:
                result = on_queued(position)
                if asyncio.iscoroutine(result):
                    await result

        async with queue.turn(tell):
            stats = GenerationStats()
            if self.stop.is_set():
                # Stopped while waiting: give the model to the next in line at once.
                self.answer = _finish("", stats, time.perf_counter(), None, True, self.prepared)
                return
            loop = asyncio.get_running_loop()
            inbox: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

            def produce() -> None:
                try:
                    iterator: Iterator[str] = backend.stream(
                        self.prepared.request, stop=self.stop, stats=stats
                    )
                    for piece in iterator:
                        loop.call_soon_threadsafe(inbox.put_nowait, ("piece", piece))
                    loop.call_soon_threadsafe(inbox.put_nowait, ("end", None))
                except BaseException as exc:
                    loop.call_soon_threadsafe(inbox.put_nowait, ("error", exc))

            started = time.perf_counter()
            first: float | None = None
            parts: list[str] = []
            ended = False
            worker = loop.run_in_executor(None, produce)
            try:
                while True:
                    kind, value = await inbox.get()
                    if kind == "piece":
                        first = first or time.perf_counter()
                        parts.append(str(value))
                        yield str(value)
                    elif kind == "error":
                        raise value  # type: ignore[misc]
                    else:
                        ended = True
                        break
            finally:
                # Stop (client stop, disconnect, or an error above) must end generation before
                # the next request in line gets this model.
                if not ended:
                    self.stop.set()
                await worker
                self.answer = _finish(
                    "".join(parts), stats, started, first, self.stop.is_set(), self.prepared
                )
