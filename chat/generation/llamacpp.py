"""llama.cpp in process (llama-cpp-python) for GGUF base models: one resident base, adapters per request.

Adapters are set on the whole llama context, so requests on one base are served one at a
time (the fair queue's key), and the prompt cache is reset whenever the adapter changes:
cached tokens would otherwise carry the previous adapter's computation. These calls reach
the Llama object's model and context handles: llama-cpp-python is pinned for that reason.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from chat.basemodels import BaseModelError, BaseModelSpec, base_model_get

from .base import AdapterRef, GenerationError, GenerationRequest, GenerationStats

log = logging.getLogger(__name__)


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except Exception:  # an import that fails for any reason means "not here"
        return False
    return True


OPENMP_WARNING = (
    "llama-cpp-python was built with OpenMP: it decodes at about a third of its speed from the "
    "worker threads generation runs in; reinstall it with scripts/install_llamacpp.sh"
)


def built_with_openmp() -> bool:
    """Whether this llama.cpp build threads with OpenMP (slow from any thread but the main one)."""
    import llama_cpp

    return "OPENMP = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")


_QUANT_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0"}
_quantize_lock = threading.Lock()


def serving_gguf(spec: BaseModelSpec) -> Path:
    """The GGUF file llama.cpp serves for a base model: as packaged, or re-quantized once.

    LLAMACPP_QUANT=q8_0 traded 13% of decode speed for a prefill 1.6x faster on
    Q4_1 files (the packaged SmolLM2), which is most of a RAG answer's time to first token.
    """
    assert spec.gguf is not None
    quant = settings.LLAMACPP_QUANT
    if not quant:
        return Path(spec.gguf)
    dest = Path(settings.MODELS_DIR) / f"{spec.name}.{quant}.gguf"
    with _quantize_lock:
        if dest.exists():
            return dest
        import llama_cpp

        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, _QUANT_TYPES[quant])
        params.allow_requantize = True
        params.nthread = os.cpu_count() or 1
        status = llama_cpp.llama_model_quantize(
            str(spec.gguf).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if status != 0 or not tmp.exists():
            tmp.unlink(missing_ok=True)
            raise GenerationError(
                "model_load_failed",
                f"{spec.name}: could not re-quantize {spec.gguf} to {quant} (status {status})",
            )
        tmp.replace(dest)
        log.info("llama.cpp: %s re-quantized to %s at %s", spec.name, quant, dest)
        return dest


@dataclass
class _Loaded:
    llm: Any
    adapters: dict[str, Any] = field(default_factory=dict)  # gguf path → llama_adapter_lora_p
    current: str | None = None
    last_messages: list[Any] | None = None


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self) -> None:
        self._models: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def queue_key(self, request: GenerationRequest) -> str:
        return f"llamacpp:{request.base_model}"

    def loaded(self, base_model: str) -> _Loaded:
        with self._lock:
            if base_model not in self._models:
                from llama_cpp import Llama

                try:
                    spec = base_model_get(name=base_model)
                except BaseModelError as exc:
                    raise GenerationError("model_unavailable", str(exc)) from exc
                if spec.gguf is None:
                    raise GenerationError("model_unavailable", f"{base_model} has no GGUF file for llama.cpp")
                started = time.perf_counter()
                path = serving_gguf(spec)
                try:
                    llm = Llama(
                        model_path=str(path),
                        n_ctx=settings.LLAMACPP_N_CTX,
                        # llama-cpp-python defaults to half the cores: 1 thread on 2 cores.
                        n_threads=settings.LLAMACPP_THREADS or os.cpu_count(),
                        n_batch=512,
                        verbose=False,
                    )
                except Exception as exc:
                    raise GenerationError(
                        "model_load_failed", f"{base_model}: {path} is not a loadable GGUF model ({exc})"
                    ) from exc
                if built_with_openmp():
                    log.warning(OPENMP_WARNING)
                self._models[base_model] = _Loaded(llm)
                # Free it before interpreter teardown, when llama.cpp's own finalizer would crash.
                atexit.register(llm.close)
                log.info("llama.cpp loaded %s in %.1fs", base_model, time.perf_counter() - started)
            return self._models[base_model]

    def _use_adapter(self, loaded: _Loaded, adapter: AdapterRef | None) -> None:
        import llama_cpp

        key = adapter.gguf_path if adapter else None
        if adapter is not None and not key:
            raise GenerationError(
                "adapter_not_converted", f"adapter '{adapter.name}' has no llama.cpp (GGUF) version"
            )
        if key == loaded.current:
            return
        ctx = loaded.llm._ctx.ctx
        if key is None:
            status = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            if key not in loaded.adapters:
                if not Path(key).exists():
                    raise GenerationError(
                        "adapter_missing",
                        f"adapter '{adapter.name}' is missing from storage ({key})",  # type: ignore[union-attr]
                    )
                pointer = llama_cpp.llama_adapter_lora_init(loaded.llm._model.model, key.encode())
                if not pointer:
                    raise GenerationError(
                        "adapter_invalid",
                        f"adapter '{adapter.name}' does not fit this base model",  # type: ignore[union-attr]
                    )
                loaded.adapters[key] = pointer
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(loaded.adapters[key])
            scales = (ctypes.c_float * 1)(1.0)
            status = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if status:
            raise GenerationError("adapter_invalid", f"llama.cpp refused the adapter (status {status})")
        loaded.llm.reset()  # the cached prompt was computed with the previous adapter
        loaded.current = key

    def stream(
        self, request: GenerationRequest, *, stop: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        loaded = self.loaded(request.base_model)
        self._use_adapter(loaded, request.adapter)
        messages = list(request.messages)
        previous = loaded.last_messages
        if previous is None or messages[: len(previous)] != previous:
            # Another conversation: its prompt shares a few template tokens with the cached one,
            # and prefilling behind the old cache was slower than from empty (4.37 vs 4.27 s for
            # a 900-token RAG prompt). The same prompt again, or one that extends it, keeps it.
            loaded.llm.reset()
        loaded.last_messages = messages
        started = time.perf_counter()
        try:
            chunks = loaded.llm.create_chat_completion(
                messages=messages,
                max_tokens=request.max_new_tokens,
                stream=True,
                temperature=request.temperature,
                top_p=0.95 if request.temperature > 0 else 1.0,
                repeat_penalty=settings.GENERATION_REPETITION_PENALTY,
            )
            first: float | None = None
            for chunk in chunks:
                if stop.is_set():
                    break
                piece = chunk["choices"][0]["delta"].get("content") or ""
                if not piece:
                    continue
                if first is None:
                    first = time.perf_counter()
                    stats.prefill_ms = (first - started) * 1000
                stats.tokens += 1
                yield piece
        except ValueError as exc:
            if "context" in str(exc).lower() or "exceed" in str(exc).lower():
                raise GenerationError("prompt_too_long", str(exc)) from exc
            raise GenerationError("generation_failed", str(exc)) from exc
        stats.decode_s = time.perf_counter() - (first or started)


_backend: LlamaCppBackend | None = None


def llamacpp_backend() -> LlamaCppBackend:
    global _backend
    if _backend is None:
        _backend = LlamaCppBackend()
    return _backend
