"""The transformers backend: one cached base, adapters switched per request with peft."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from chat.generation import AdapterRef, GenerationError, GenerationRequest, GenerationStats
from chat.generation.local import local_backend
from chat.prompting import ChatMessage

pytestmark = pytest.mark.slow

BASE = "smollm2-135m-instruct"
PROMPT: list[ChatMessage] = [{"role": "user", "content": "Name three colours."}]


def random_adapter(dest: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    backend = local_backend()
    base = backend.loaded(BASE).model
    base = getattr(base, "base_model", base)
    base = getattr(base, "model", base)  # unwrap a PeftModel left by another test
    torch.manual_seed(seed)
    from transformers import AutoModelForCausalLM

    fresh = AutoModelForCausalLM.from_config(base.config)
    fresh.load_state_dict(base.state_dict(), strict=False)
    config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(fresh, config).save_pretrained(str(dest))
    return dest


def generate(adapter: AdapterRef | None, tokens: int = 12) -> str:
    request = GenerationRequest(base_model=BASE, messages=PROMPT, max_new_tokens=tokens, adapter=adapter)
    return "".join(local_backend().stream(request, stop=threading.Event(), stats=GenerationStats()))


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[AdapterRef, AdapterRef]:
    root = tmp_path_factory.mktemp("adapters")
    a = AdapterRef(id=9001, name="a", path=str(random_adapter(root / "a", 1)))
    b = AdapterRef(id=9002, name="b", path=str(random_adapter(root / "b", 2)))
    return a, b


def test_adapters_switch_per_request_without_reloading_the_base(adapters) -> None:
    a, b = adapters
    loaded = local_backend().loaded(BASE)
    plain = generate(None)
    with_a = generate(a)
    with_b = generate(b)
    assert len({plain, with_a, with_b}) == 3
    # Switching back gives the very same answers: nothing leaked between requests.
    assert generate(None) == plain and generate(a) == with_a
    assert local_backend().loaded(BASE) is loaded


def test_stop_ends_generation_at_once() -> None:
    stop = threading.Event()
    stats = GenerationStats()
    request = GenerationRequest(base_model=BASE, messages=PROMPT, max_new_tokens=300)
    pieces = []
    for piece in local_backend().stream(request, stop=stop, stats=stats):
        pieces.append(piece)
        stop.set()
    assert stats.tokens < 10


def test_an_adapter_missing_from_storage_is_reported(tmp_path: Path, adapters) -> None:
    gone = tmp_path / "gone"
    shutil.copytree(adapters[0].path, gone)
    ref = AdapterRef(id=9003, name="gone", path=str(gone))
    shutil.rmtree(gone)
    with pytest.raises(GenerationError) as err:
        generate(ref)
    assert err.value.code == "adapter_missing"
    assert generate(None)  # the base goes on serving


def test_a_prompt_longer_than_the_context_is_refused_clearly() -> None:
    long: list[ChatMessage] = [{"role": "user", "content": "word " * 9000}]
    request = GenerationRequest(base_model=BASE, messages=long)
    with pytest.raises(GenerationError) as err:
        list(local_backend().stream(request, stop=threading.Event(), stats=GenerationStats()))
    assert err.value.code == "prompt_too_long"
