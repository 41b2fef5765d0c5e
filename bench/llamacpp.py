"""llama.cpp against transformers on this CPU, raw and through the product, with and without an adapter.

    .venv/bin/python bench/llamacpp.py [--tokens 128] [--repeats 3]

Rows (one run, same packaged SmolLM2-135M-Instruct, same ~110-token chat prompt, greedy):
raw llama-cpp-python decode; the product's `llamacpp` backend streamed through the chat
pipeline's queue (the websocket consumer's code path, `chat.pipeline.Streamed`); the same
with a LoRA adapter attached (converted to GGUF by llama.cpp's own converter); transformers
`generate` in fp32 and bf16; and time to first token for a 5-passage RAG prompt on each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "expertsite.settings.dev")

QUESTION = "Write a detailed explanation of how a centrifugal water pump works, step by step."


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def raw_llamacpp(gguf: str, messages: Any, tokens: int, repeats: int) -> tuple[float, float]:
    """(decode tokens/s, prefill ms) of llama-cpp-python alone, with the product's sampling settings."""
    from llama_cpp import Llama

    llm = Llama(model_path=gguf, n_ctx=4096, n_threads=os.cpu_count(), n_batch=512, verbose=False)
    rates, prefills = [], []
    for _ in range(repeats + 1):
        llm.reset()
        start = time.perf_counter()
        first = None
        n = 0
        for _chunk in llm.create_chat_completion(
            messages=messages, max_tokens=tokens, stream=True, temperature=0.0, repeat_penalty=1.15
        ):
            now = time.perf_counter()
            if first is None:
                first = now
            n += 1
        end = time.perf_counter()
        if first is not None and n > 2:
            rates.append((n - 1) / (end - first))
            prefills.append((first - start) * 1000)
    llm.close()
    return median(rates[1:]), median(prefills[1:])


def product_stream(
    expert: Any, question: str, repeats: int, mode: str | None = None
) -> tuple[float, float, int]:
    """(tokens/s, ttft ms, tokens) through answer_prepare + Streamed, as the consumer runs it."""
    from chat.generation.llamacpp import llamacpp_backend
    from chat.pipeline import Streamed, answer_prepare

    rates, ttfts, counts = [], [], []
    for _ in range(repeats + 1):
        # A new conversation's prompt is not in llama.cpp's prompt cache: measure that case.
        llamacpp_backend().loaded(expert.base_model).llm.reset()
        prepared = answer_prepare(expert=expert, question=question, mode=mode)
        streamed = Streamed(prepared)

        async def consume(streamed: Streamed = streamed) -> tuple[float | None, float, int]:
            start = time.perf_counter()
            first = None
            n = 0
            async for _piece in streamed.pieces():
                first = first or time.perf_counter()
                n += 1
            return (first - start) * 1000 if first else None, time.perf_counter(), n

        ttft, _end, _n = asyncio.run(consume())
        answer = streamed.answer
        assert answer is not None
        if answer.tokens_per_s:
            rates.append(answer.tokens_per_s)
        ttfts.append((ttft or 0) + prepared.retrieval_ms)
        counts.append(answer.stats.tokens)
    return median(rates[1:]), median(ttfts[1:]), int(median([float(c) for c in counts[1:]]))


def raw_transformers(
    dtype: str, messages: list[dict[str, str]], tokens: int, repeats: int
) -> tuple[float, float]:
    import torch
    from transformers import TextIteratorStreamer

    from chat.basemodels import base_model_get, load_causal_lm

    model: Any
    tok: Any
    model, tok = load_causal_lm(
        spec=base_model_get(name="smollm2-135m-instruct"),
        dtype={"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype],
    )
    ids: Any = tok.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_tensors="pt"
    )
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    rates, prefills = [], []
    for _ in range(repeats + 1):
        streamer = TextIteratorStreamer(tok, skip_prompt=True)
        stamps: list[float] = []

        def run(streamer: TextIteratorStreamer = streamer) -> None:
            with torch.inference_mode():
                model.generate(
                    ids,
                    max_new_tokens=tokens,
                    min_new_tokens=tokens,
                    do_sample=False,
                    streamer=streamer,
                    repetition_penalty=1.15,
                )

        start = time.perf_counter()
        thread = threading.Thread(target=run)
        thread.start()

        for _piece in streamer:
            stamps.append(time.perf_counter())
        thread.join()
        end = time.perf_counter()
        if stamps:
            rates.append((tokens - 1) / (end - stamps[0]))
            prefills.append((stamps[0] - start) * 1000)
    return median(rates[1:]), median(prefills[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from chat.basemodels import base_model_get
    from chat.generation import backend_name_for
    from chat.models import Expert, Mode
    from chat.pipeline import answer_prepare
    from chat.services import expert_create
    from training.gguf_export import adapter_export_gguf
    from training.models import Adapter

    if backend_name_for("smollm2-135m-instruct")[0] != "llamacpp":
        print("llama-cpp-python is not installed here: nothing to compare")
        return 0
    call_command("demo_load", verbosity=0)
    demo = Expert.objects.get(slug="demo")
    base = Expert.objects.filter(slug="bench-llamacpp").first() or expert_create(
        team=demo.team, name="bench llama.cpp", slug="bench-llamacpp", mode=Mode.BASE
    )
    Expert.objects.filter(pk=base.pk).update(max_new_tokens=args.tokens, temperature=0.0, system_prompt="")
    base.refresh_from_db()
    spec = base_model_get(name="smollm2-135m-instruct")
    assert spec.gguf is not None
    gguf = str(spec.gguf)
    rag = Expert.objects.filter(slug="bench-llamacpp-rag").first() or expert_create(
        team=demo.team,
        name="bench RAG, 5 passages",
        slug="bench-llamacpp-rag",
        mode=Mode.RAG,
        collections=list(demo.collections.all()),
        top_k=5,
    )
    messages = [{"role": "user", "content": QUESTION}]
    rag_messages: Any = [
        dict(m)
        for m in answer_prepare(
            expert=rag, question="How do I replace the shaft seal?", mode=Mode.RAG
        ).request.messages
    ]

    # A LoRA adapter (random weights, r 16, all-linear) in both formats, behind an ft expert.
    media = Path(settings.MEDIA_ROOT)
    adapter_dir = media / "bench" / "adapter"
    if not (adapter_dir / "adapter.gguf").exists():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        from chat.basemodels import base_model_prepare

        model = AutoModelForCausalLM.from_pretrained(str(base_model_prepare(spec=spec)), dtype=torch.float32)
        torch.manual_seed(0)
        config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(str(adapter_dir))
        adapter_export_gguf(adapter_dir=adapter_dir, base=spec, dest=adapter_dir / "adapter.gguf")
    adapter = Adapter.objects.filter(name="bench adapter").first() or Adapter.objects.create(
        team=demo.team,
        name="bench adapter",
        base_model=spec.name,
        path="bench/adapter",
        gguf_path="bench/adapter/adapter.gguf",
    )
    ft = Expert.objects.filter(slug="bench-llamacpp-ft").first() or expert_create(
        team=demo.team, name="bench llama.cpp + adapter", slug="bench-llamacpp-ft", mode=Mode.FT
    )
    Expert.objects.filter(pk=ft.pk).update(
        adapter=adapter, max_new_tokens=args.tokens, temperature=0.0, system_prompt=""
    )
    ft.refresh_from_db()

    load = os.getloadavg()
    print(
        f"bench/llamacpp.py: {args.tokens} new tokens, median of {args.repeats} after one warm-up, "
        f"load average {load[0]:.2f} on {os.cpu_count()} cores"
    )
    raw_rate, raw_prefill = raw_llamacpp(gguf, messages, args.tokens, args.repeats)
    _, raw_rag_prefill = raw_llamacpp(gguf, rag_messages, 8, args.repeats)
    prod_rate, prod_ttft, prod_tokens = product_stream(base, QUESTION, args.repeats)
    ft_rate, ft_ttft, ft_tokens = product_stream(ft, QUESTION, args.repeats, mode=Mode.FT)
    _, rag_ttft, _ = product_stream(rag, "How do I replace the shaft seal?", args.repeats, mode=Mode.RAG)
    rows: list[tuple[str, float, str, str]] = [
        ("llama-cpp-python raw, Q4_1", raw_rate, f"{raw_prefill:.0f}", f"{raw_rag_prefill:.0f} (prefill)"),
        (
            f"product llamacpp backend ({prod_tokens} tok)",
            prod_rate,
            f"{prod_ttft:.0f}",
            f"{rag_ttft:.0f} (ttft)",
        ),
        (f"  + LoRA adapter ({ft_tokens} tok)", ft_rate, f"{ft_ttft:.0f}", "-"),
    ]
    for dtype in ("float32", "bfloat16"):
        rate, prefill = raw_transformers(dtype, messages, args.tokens, max(1, args.repeats - 1))
        _, rag_prefill = raw_transformers(dtype, rag_messages, 2, 1)
        rows.append(
            (f"transformers generate, {dtype}", rate, f"{prefill:.0f}", f"{rag_prefill:.0f} (prefill)")
        )
    print(f"\n{'engine':<44}{'decode tok/s':>14}{'ttft ms':>10}{'5-passage RAG ms':>20}")
    for name, rate, ttft, rag_ms in rows:
        print(f"{name:<44}{rate:>14.1f}{ttft:>10}{rag_ms:>20}")
    print(
        f"\nproduct / raw llama.cpp: {prod_rate / raw_rate:.2f} (target >= 0.9); "
        f"with adapter: {ft_rate / raw_rate:.2f} (target >= 0.7)"
    )
    print("references on this machine kind: transformers fp32 24, bf16 43, llama.cpp Q4_1 218-226 tokens/s")
    print(f"RAG prompt: {len(rag_messages[-1]['content'])} characters, 5 passages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
