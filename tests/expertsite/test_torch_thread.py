"""All torch CPU work of a process runs on one thread, so OpenMP keeps one team of workers."""

from __future__ import annotations

import threading

import pytest

from expertsite.torch_thread import THREAD_NAME, on_torch_thread, torch_call, torch_submit


def test_calls_run_on_one_named_thread_and_nest_inline() -> None:
    seen: list[str] = []

    def outer() -> str:
        seen.append(threading.current_thread().name)
        return torch_call(lambda: threading.current_thread().name)  # would deadlock if queued

    inner = torch_call(outer)
    again = torch_call(lambda: threading.current_thread().name)
    assert seen[0].startswith(THREAD_NAME) and inner == seen[0] == again
    assert not on_torch_thread()


def test_submitting_from_the_torch_thread_is_refused() -> None:
    with pytest.raises(RuntimeError, match="wait on itself"):
        torch_call(torch_submit, lambda: None)
    assert torch_submit(lambda: None).result() is None


def test_exceptions_come_back_to_the_caller() -> None:
    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        torch_call(boom)


def test_embeddings_are_computed_on_the_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge import embedding

    threads: list[str] = []
    real = embedding._encode

    def recording(texts: list[str], batch_size: int) -> object:
        threads.append(threading.current_thread().name)
        return real(texts, batch_size)

    monkeypatch.setattr(embedding, "_encode", recording)
    vectors = embedding.embed_texts(["a pump", "a valve"])
    assert vectors.shape == (2, 384) and threads and threads[0].startswith(THREAD_NAME)
