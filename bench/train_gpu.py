"""LoRA / QLoRA throughput, memory and MFU on the full-size Phi-3-mini architecture, through the
product's own training loop (training/trainer.py). Run on a lent GPU machine:

    python bench/train_gpu.py            # LoRA and QLoRA, seq 1024, batch 8, r 16 all-linear
    SEQ=512 BS=4 STEPS=10 python bench/train_gpu.py

It needs no database or Redis (Django settings are only parsed) and no model download: the
model has random weights and real shapes, the tokenizer is a word-level one made here. Run
the reference loop (shared/bench/gpu_lora_baseline.py) in the same call so the two figures
are a ratio from one machine; this script runs it first when it can find it.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "expertsite.settings.dev")
# Settings demand these URLs; nothing here connects to them.
os.environ.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
os.environ.setdefault("EXPERTSITE_VAR_DIR", tempfile.mkdtemp(prefix="bench-var-"))

SEQ = int(os.environ.get("SEQ", 1024))
BS = int(os.environ.get("BS", 8))
STEPS = int(os.environ.get("STEPS", 12))
# TINY=1 shrinks the model and runs on the CPU: a dry run of this script's own code.
TINY = os.environ.get("TINY") == "1"
DEVICE = "cpu" if TINY else "cuda"
# TINY=1 shrinks the model and runs on the CPU: a dry run of this script's own code.
TINY = os.environ.get("TINY") == "1"
DEVICE = "cpu" if TINY else "cuda"
PEAK_BF16 = 989e12  # H100 SXM dense bf16
N_PARAMS = 3.82e9
VOCAB = 32064


def build_model(dest: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, Phi3Config, PreTrainedTokenizerFast

    from chat.basemodels import PHI3_CHAT_TEMPLATE

    full = {
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
    }
    tiny = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    }
    shape: dict[str, Any] = tiny if TINY else full
    cfg = Phi3Config(
        vocab_size=VOCAB,
        max_position_embeddings=4096,
        pad_token_id=32000,
        bos_token_id=1,
        eos_token_id=32000,
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(dest)
    del model
    gc.collect()
    specials = ["<unk>", "<s>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    vocab.update({f"w{i}": len(vocab) for i in range(VOCAB - 8 - len(specials))})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[3:],
    )
    fast.chat_template = PHI3_CHAT_TEMPLATE
    fast.save_pretrained(dest)


def examples(n: int) -> list[list[dict[str, str]]]:
    import random

    rng = random.Random(0)
    # About SEQ tokens each once the chat template is applied; the answer is the loss's part.
    words = lambda k: " ".join(f"w{rng.randrange(30000)}" for _ in range(k))  # noqa: E731
    return [
        [{"role": "user", "content": words(SEQ - 140)}, {"role": "assistant", "content": words(128)}]
        for _ in range(n)
    ]


def run(method: str, model_dir: Path) -> dict[str, object]:
    import torch

    from chat.basemodels import BaseModelSpec
    from training.hyperparams import hyperparams_clean
    from training.trainer import Callbacks, StepReport, TrainSpec, train

    if not TINY:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    tokens: list[float] = []
    last = [time.perf_counter()]

    def on_step(r: StepReport) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        tokens.append(r.tokens_per_s)
        last[0] = now

    hp = hyperparams_clean(
        {"batch_size": BS, "max_seq_len": SEQ, "epochs": 1, "checkpoint_every": 10_000, "warmup_ratio": 0.0}
    )
    spec = TrainSpec(
        base=BaseModelSpec(
            name="phi3-mini-random", label="phi3", family="phi3", gguf=None, source=str(model_dir)
        ),
        method=method,
        hp=hp,
        train=examples(BS * STEPS),
        eval=[],
        checkpoint_dir=Path(tempfile.mkdtemp()) / "ckpt",
        output_dir=Path(tempfile.mkdtemp()) / "out",
        device=DEVICE,
    )
    try:
        result = train(spec, Callbacks(on_step=on_step))
    except Exception as exc:  # a benchmark reports every failure and goes on
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    steady = sorted(times[3:])[len(times[3:]) // 2] if len(times) > 4 else (times[-1] if times else 0)
    tok_s = BS * SEQ / steady if steady else 0.0
    out: dict[str, object] = {
        "steps": result.steps,
        "step_s": round(steady, 3),
        "tokens_per_s": round(tok_s),
        "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if not TINY else 0.0,
        "MFU_4N": round(4 * N_PARAMS * tok_s / PEAK_BF16, 3),
        "MFU_6N_recompute": round(6 * N_PARAMS * tok_s / PEAK_BF16, 3),
        "loss_first": result.loss_first,
        "loss_last": result.loss_last,
    }
    gc.collect()
    if not TINY:
        torch.cuda.empty_cache()
    return out


def main() -> int:
    import torch

    if not torch.cuda.is_available() and not TINY:
        print("skipped: no CUDA device (this benchmark runs on a lent GPU machine)")
        return 0
    baseline = next(
        (
            p
            for p in (
                ROOT / "shared/bench/gpu_lora_baseline.py",
                ROOT.parent / "shared/bench/gpu_lora_baseline.py",
            )
            if p.exists()
        ),
        None,
    )
    if baseline and not TINY and os.environ.get("SKIP_BASELINE") != "1":
        print(f"== reference loop: {baseline}", flush=True)
        subprocess.run([sys.executable, str(baseline)], check=False)
    import django

    django.setup()
    model_dir = Path(tempfile.mkdtemp(prefix="phi3-mini-random-"))
    build_model(model_dir)
    results = {"lora": run("lora", model_dir), "qlora": run("qlora", model_dir)}
    print(
        f"\nPhi-3-mini architecture (random weights), seq {SEQ}, batch {BS}, LoRA r16 all-linear, "
        f"{'CPU dry run (TINY)' if TINY else torch.cuda.get_device_name()}"
    )
    print(f"{'run':<8}{'tokens/s':>10}{'peak GiB':>10}{'MFU 4N':>8}{'MFU 6N':>8}{'loss':>16}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<8} FAILED {r['error']}")
            continue
        print(
            f"{name:<8}{r['tokens_per_s']:>10}{r['peak_GiB']:>10}{r['MFU_4N']:>8}{r['MFU_6N_recompute']:>8}"
            f"{r['loss_first']:>8.3f}>{r['loss_last']:.3f}"
        )
    lora, qlora = results["lora"], results["qlora"]
    if "error" not in lora and "error" not in qlora:
        ratio = float(qlora["tokens_per_s"]) / max(float(lora["tokens_per_s"]), 1)  # type: ignore[arg-type]
        print(
            f"targets: LoRA >= 22,000 tokens/s (reference 15,479); QLoRA peak <= 12 GiB (reference 50.7) "
            f"and >= 0.7x LoRA (got {ratio:.2f}x)"
        )
    out = Path(os.environ.get("OUT", tempfile.gettempdir())) / "train_gpu.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
