"""The llama.cpp backend: one resident GGUF base, GGUF LoRA adapters switched per request."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from chat.basemodels import base_model_get
from chat.generation import AdapterRef, GenerationError, GenerationRequest, GenerationStats, backend_for
from chat.generation.llamacpp import OPENMP_WARNING, built_with_openmp, llamacpp_backend
from chat.prompting import ChatMessage
from tests.chat.test_local_backend import random_adapter
from training.gguf_export import adapter_export_gguf

pytestmark = pytest.mark.slow

BASE = "smollm2-135m-instruct"
PROMPT: list[ChatMessage] = [{"role": "user", "content": "Name three colours."}]


def generate(adapter: AdapterRef | None, tokens: int = 16, messages: list[ChatMessage] = PROMPT) -> str:
    request = GenerationRequest(base_model=BASE, messages=messages, max_new_tokens=tokens, adapter=adapter)
    return "".join(llamacpp_backend().stream(request, stop=threading.Event(), stats=GenerationStats()))


@pytest.fixture(scope="module")
def gguf_adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[AdapterRef, AdapterRef]:
    root = tmp_path_factory.mktemp("gguf-adapters")
    refs = []
    for i, seed in enumerate((1, 2)):
        peft_dir = random_adapter(root / f"peft{i}", seed)
        gguf = adapter_export_gguf(
            adapter_dir=peft_dir, base=base_model_get(name=BASE), dest=root / f"a{i}.gguf"
        )
        refs.append(AdapterRef(id=100 + i, name=f"a{i}", path=str(peft_dir), gguf_path=str(gguf)))
    return refs[0], refs[1]


def test_gguf_models_are_served_by_llamacpp_when_it_is_installed() -> None:
    assert backend_for(BASE).name == "llamacpp"
    assert backend_for("phi-3-mini-4k-instruct").name == "local"  # no GGUF: transformers


def test_the_installed_llamacpp_threads_without_openmp() -> None:
    # An OpenMP build decodes at a third of its speed from the worker threads generation runs in.
    assert not built_with_openmp(), OPENMP_WARNING


def test_a_requantized_copy_is_made_once_and_served(tmp_path: Path, settings) -> None:
    from chat.generation.llamacpp import LlamaCppBackend, serving_gguf

    spec = base_model_get(name=BASE)
    assert serving_gguf(spec) == spec.gguf  # as packaged by default
    settings.LLAMACPP_QUANT = "q8_0"
    settings.MODELS_DIR = tmp_path
    copy = serving_gguf(spec)
    assert copy == tmp_path / f"{BASE}.q8_0.gguf" and copy.stat().st_size > spec.gguf.stat().st_size
    made = copy.stat().st_mtime_ns
    assert serving_gguf(spec) == copy and copy.stat().st_mtime_ns == made
    backend = LlamaCppBackend()
    request = GenerationRequest(base_model=BASE, messages=PROMPT, max_new_tokens=12)
    text = "".join(backend.stream(request, stop=threading.Event(), stats=GenerationStats()))
    assert backend.loaded(BASE).llm.model_path == str(copy)
    assert text.strip()


def test_the_prompt_cache_is_kept_only_for_the_same_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = llamacpp_backend().loaded(BASE).llm
    cached_at_start: list[int] = []
    real = llm.create_chat_completion

    def spy(**kwargs: object) -> object:
        cached_at_start.append(llm.n_tokens)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(llm, "create_chat_completion", spy)
    generate(None, 4)
    generate(None, 4)  # the same prompt again: its cached tokens are reused
    generate(None, 4, messages=[{"role": "user", "content": "Name three metals."}])
    assert cached_at_start[1] > 0 and cached_at_start[2] == 0


def test_health_reports_an_openmp_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from chat.generation import llamacpp
    from expertsite.health import _generation

    assert "note" not in _generation()["llamacpp"]  # type: ignore[operator]
    monkeypatch.setattr(llamacpp, "built_with_openmp", lambda: True)
    assert _generation()["llamacpp"]["note"] == OPENMP_WARNING  # type: ignore[index]


def test_two_adapters_on_one_base_answer_side_by_side_without_reloading(gguf_adapters) -> None:
    a, b = gguf_adapters
    llm = llamacpp_backend().loaded(BASE).llm
    plain, with_a, with_b = generate(None), generate(a), generate(b)
    assert len({plain, with_a, with_b}) == 3
    # Alternating gives the same answers: the prompt cache never leaks an adapter's state.
    assert [generate(a), generate(None), generate(b), generate(None)] == [with_a, plain, with_b, plain]
    assert llamacpp_backend().loaded(BASE).llm is llm


def test_an_adapter_deleted_from_storage_is_reported_and_others_go_on(gguf_adapters, tmp_path: Path) -> None:
    copy = tmp_path / "gone.gguf"
    shutil.copy(gguf_adapters[0].gguf_path, copy)
    ref = AdapterRef(id=999, name="gone", path="", gguf_path=str(copy))
    copy.unlink()
    with pytest.raises(GenerationError) as err:
        generate(ref)
    assert err.value.code == "adapter_missing"
    assert generate(None)


def test_an_adapter_without_a_gguf_version_is_refused_clearly() -> None:
    with pytest.raises(GenerationError) as err:
        generate(AdapterRef(id=5, name="peft-only", path="/x"))
    assert err.value.code == "adapter_not_converted"


def test_a_gguf_that_is_not_a_model_fails_to_load_with_a_reason(tmp_path: Path, settings) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    settings.BASE_MODELS = {
        **settings.BASE_MODELS,
        "fake": {"label": "fake", "family": "smollm2", "gguf": str(fake), "path": ""},
    }
    request = GenerationRequest(base_model="fake", messages=PROMPT)
    with pytest.raises(GenerationError) as err:
        list(llamacpp_backend().stream(request, stop=threading.Event(), stats=GenerationStats()))
    assert err.value.code == "model_load_failed" and "fake.gguf" in err.value.message


def test_a_prompt_longer_than_the_context_is_refused_clearly() -> None:
    with pytest.raises(GenerationError) as err:
        generate(None, messages=[{"role": "user", "content": "word " * 6000}])
    assert err.value.code == "prompt_too_long"


def test_stop_ends_generation_at_once() -> None:
    stop = threading.Event()
    stats = GenerationStats()
    request = GenerationRequest(base_model=BASE, messages=PROMPT, max_new_tokens=300)
    for _ in llamacpp_backend().stream(request, stop=stop, stats=stats):
        stop.set()
    assert stats.tokens <= 2
