"""transformers + peft in this process: base models cached, adapters switched without reloading."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from chat.basemodels import BaseModelError, base_model_get, load_causal_lm
from expertsite.torch_thread import torch_call, torch_submit

from .base import AdapterRef, GenerationError, GenerationRequest, GenerationStats

log = logging.getLogger(__name__)


@dataclass
class _Loaded:
    model: Any  # PreTrainedModel, or a PeftModel wrapping it once an adapter is attached
    tokenizer: Any
    eos_ids: list[int]
    context: int
    adapters: set[str] = field(default_factory=set)


def _dtype() -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        settings.LOCAL_DTYPE
    ]


class LocalBackend:
    name = "local"

    def __init__(self) -> None:
        self._models: dict[str, _Loaded] = {}
        self._load_lock = threading.Lock()

    def queue_key(self, request: GenerationRequest) -> str:
        # Adapters are switched on the one cached model: every request on a base waits its turn.
        return f"local:{request.base_model}"

    def loaded(self, base_model: str) -> _Loaded:
        return torch_call(self._loaded, base_model)

    def _loaded(self, base_model: str) -> _Loaded:
        with self._load_lock:
            if base_model not in self._models:
                try:
                    spec = base_model_get(name=base_model)
                    started = time.perf_counter()
                    model, tokenizer = load_causal_lm(spec=spec, dtype=_dtype(), device=settings.LOCAL_DEVICE)
                except BaseModelError as exc:
                    raise GenerationError("model_unavailable", str(exc)) from exc
                except Exception as exc:
                    raise GenerationError("model_load_failed", f"{base_model} failed to load: {exc}") from exc
                eos = model.generation_config.eos_token_id
                eos_ids = list(eos) if isinstance(eos, list | tuple) else [eos]
                if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
                    eos_ids.append(tokenizer.eos_token_id)
                context = int(getattr(model.config, "max_position_embeddings", 2048))
                self._models[base_model] = _Loaded(
                    model, tokenizer, [e for e in eos_ids if e is not None], context
                )
                log.info("loaded %s in %.1fs", base_model, time.perf_counter() - started)
            return self._models[base_model]

    def _select_adapter(self, loaded: _Loaded, adapter: AdapterRef | None) -> Any:
        """The model to call: the base alone, or with this request's adapter active."""
        if adapter is None:
            return None
        key = f"a{adapter.id}"
        if key not in loaded.adapters:
            if not (Path(adapter.path) / "adapter_config.json").exists():
                raise GenerationError(
                    "adapter_missing", f"adapter '{adapter.name}' is missing from storage ({adapter.path})"
                )
            from peft import PeftModel

            if not loaded.adapters:
                loaded.model = PeftModel.from_pretrained(loaded.model, adapter.path, adapter_name=key)
            else:
                loaded.model.load_adapter(adapter.path, adapter_name=key)
            loaded.model.eval()
            loaded.adapters.add(key)
        loaded.model.set_adapter(key)
        return key

    def render(self, base_model: str, messages: list[Any]) -> list[int]:
        loaded = self.loaded(base_model)
        ids = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def stream(
        self, request: GenerationRequest, *, stop: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        loaded = self.loaded(request.base_model)
        t0 = time.perf_counter()
        ids = self.render(request.base_model, request.messages)
        if len(ids) + request.max_new_tokens > loaded.context:
            raise GenerationError(
                "prompt_too_long",
                f"the prompt has {len(ids)} tokens; with {request.max_new_tokens} new tokens it exceeds "
                f"the model's context of {loaded.context}",
            )
        stats.prompt_tokens = len(ids)
        stats.prompt_ms = (time.perf_counter() - t0) * 1000
        adapter_key = torch_call(self._select_adapter, loaded, request.adapter)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        class _Counting(TextIteratorStreamer):
            generated = 0

            def put(self, value: Any) -> None:
                if not self.next_tokens_are_prompt:
                    self.generated += int(value.numel())
                super().put(value)

        streamer = _Counting(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor([ids], device=loaded.model.device),
            "attention_mask": torch.ones((1, len(ids)), dtype=torch.long, device=loaded.model.device),
            "max_new_tokens": request.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Stop()]),
            "eos_token_id": loaded.eos_ids,
            "pad_token_id": loaded.tokenizer.pad_token_id,
            # Small models loop on greedy decoding ("12 months, 12 weeks, 12 months, ...").
            "repetition_penalty": settings.GENERATION_REPETITION_PENALTY,
        }
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    if adapter_key is None and loaded.adapters:
                        with loaded.model.disable_adapter():
                            loaded.model.generate(**kwargs)
                    else:
                        loaded.model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the consumer below
                failure.append(exc)
                streamer.end()

        gen_start = time.perf_counter()
        generation = torch_submit(run)
        first: float | None = None
        for piece in streamer:
            if first is None:
                first = time.perf_counter()
                stats.prefill_ms = (first - gen_start) * 1000
            if piece:
                yield piece
        generation.result()
        stats.tokens = streamer.generated
        stats.decode_s = time.perf_counter() - (first or gen_start)
        if failure:
            raise GenerationError("generation_failed", f"generation failed: {failure[0]}")


_backend: LocalBackend | None = None


def local_backend() -> LocalBackend:
    global _backend
    if _backend is None:
        _backend = LocalBackend()
    return _backend
