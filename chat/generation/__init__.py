"""Generation backends behind one interface, chosen per base model by setting."""

from __future__ import annotations

import logging

from django.conf import settings

from .base import AdapterRef, Backend, GenerationError, GenerationRequest, GenerationStats

__all__ = [
    "AdapterRef",
    "Backend",
    "GenerationError",
    "GenerationRequest",
    "GenerationStats",
    "backend_for",
    "backend_name_for",
]

log = logging.getLogger(__name__)
_warned: set[str] = set()


def backend_name_for(base_model: str) -> tuple[str, str]:
    """(backend, note): `auto` means llama.cpp for GGUF models when it is installed."""
    name = settings.GENERATION_BACKENDS.get(base_model, settings.GENERATION_BACKEND)
    if name != "auto":
        return name, ""
    entry = settings.BASE_MODELS.get(base_model, {})
    if not entry.get("gguf"):
        return "local", ""
    from .llamacpp import available

    if available():
        return "llamacpp", ""
    return "local", "llama-cpp-python is not installed: GGUF models run on transformers (slower)"


def backend_for(base_model: str) -> Backend:
    name, note = backend_name_for(base_model)
    if note and base_model not in _warned:
        _warned.add(base_model)
        log.warning("%s: %s", base_model, note)
    if name == "openai":
        from .openai_compat import OpenAIBackend

        return OpenAIBackend()
    if name == "llamacpp":
        from .llamacpp import llamacpp_backend

        return llamacpp_backend()
    if name == "local":
        from .local import local_backend

        return local_backend()
    raise GenerationError("backend_unknown", f"unknown generation backend '{name}' for {base_model}")
