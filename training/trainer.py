"""The LoRA / QLoRA training loop: loss on answer tokens only, checkpoints, resume, cancel.

A plain PyTorch loop rather than transformers' Trainer: resuming a killed worker must
redo exactly the steps after the last checkpoint (no lost or doubled steps), and that
needs the data order, optimizer, scheduler and RNG under our own control.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.basemodels import BaseModelSpec, base_model_hf_dir, base_model_prepare

from .hyperparams import Hyperparams

CHECKPOINT_STATE = "trainer_state.pt"
IGNORE = -100


class TrainingFailed(Exception):
    """The job cannot go on; the message is what a person reads on the job page."""


class TrainingCancelled(Exception):
    pass


@dataclass
class TrainSpec:
    base: BaseModelSpec
    method: str
    hp: Hyperparams
    train: list[list[dict[str, str]]]
    eval: list[list[dict[str, str]]]
    checkpoint_dir: Path
    output_dir: Path
    device: str = "cpu"


@dataclass
class StepReport:
    step: int
    total: int
    loss: float
    lr: float
    tokens_per_s: float
    eta_s: float
    peak_mem_mb: float


@dataclass
class Callbacks:
    on_step: Callable[[StepReport], None] = lambda report: None
    on_eval: Callable[[int, float], None] = lambda step, loss: None
    on_checkpoint: Callable[[int], None] = lambda step: None
    on_log: Callable[[str], None] = lambda line: None
    should_stop: Callable[[], bool] = lambda: False


@dataclass
class TrainResult:
    steps: int
    loss_first: float | None
    loss_last: float | None
    eval_loss: float | None
    tokens_per_s: float | None
    peak_mem_mb: float
    truncated: int
    resumed_from: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def _ids(value: Any) -> list[int]:
    if hasattr(value, "keys"):
        value = value["input_ids"]
    return [int(x) for x in value]


def encode_example(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> Encoded:
    """Token ids of the whole conversation, with labels only on the final answer."""
    prompt = _ids(tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(messages, tokenize=True))
    common = 0
    for a, b in zip(prompt, full, strict=False):
        if a != b:
            break
        common += 1
    labels = [IGNORE] * common + full[common:]
    truncated = len(full) > max_len
    return Encoded(full[:max_len], labels[:max_len], truncated)


def _peak_mem_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _oom_message(hp: Hyperparams) -> str:
    return (
        f"out of GPU memory at batch size {hp['batch_size']}, sequence length {hp['max_seq_len']}: "
        "lower one of them or use QLoRA"
    )


def _load_model(spec: TrainSpec, resume_adapter: Path | None) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir = base_model_prepare(spec=spec.base) if spec.base.is_gguf else base_model_hf_dir(spec=spec.base)
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = spec.device.startswith("cuda")
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if spec.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32,
        )
    model: Any
    try:
        model = AutoModelForCausalLM.from_pretrained(str(hf_dir), device_map={"": spec.device}, **kwargs)
    except Exception as exc:
        if spec.method == "qlora" and not cuda:
            raise TrainingFailed(
                f"QLoRA could not load the 4-bit base on CPU ({type(exc).__name__}: {exc}); "
                "bitsandbytes' CPU backend does not support it here: use LoRA, or a GPU worker"
            ) from exc
        raise
    if spec.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cuda)
    elif cuda:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    if resume_adapter is not None:
        model = PeftModel.from_pretrained(model, str(resume_adapter), is_trainable=True)
    else:
        config = LoraConfig(
            r=spec.hp["r"],
            lora_alpha=spec.hp["alpha"],
            lora_dropout=spec.hp["dropout"],
            target_modules=spec.hp["target_modules"],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    # Gradient checkpointing only runs in train mode; a model left in eval mode silently
    # trains without it (the reference baseline's 46 GiB).
    model.train()
    return model, tokenizer


def _batches(n: int, batch: int, seed: int, epoch: int) -> list[list[int]]:
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [order[i : i + batch] for i in range(0, n, batch)]


def _collate(examples: list[Encoded], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        labels[i, : len(e.labels)] = torch.tensor(e.labels)
        mask[i, : len(e.input_ids)] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def _save_checkpoint(
    model: Any, optimizer: Any, scheduler: Any, step: int, history: list[dict[str, float]], dest: Path
) -> None:
    import torch

    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp / "adapter"))
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "history": history,
        },
        tmp / CHECKPOINT_STATE,
    )
    # Swap in whole: a worker killed here leaves either the old checkpoint or the new one.
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.replace(old)
    tmp.replace(dest)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_step(dest: Path) -> int:
    if not (dest / CHECKPOINT_STATE).exists():
        return 0
    import torch

    return int(torch.load(dest / CHECKPOINT_STATE, weights_only=False)["step"])


def _eval_loss(model: Any, encoded: list[Encoded], pad_id: int, batch: int, device: str) -> float | None:
    import torch

    if not encoded:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(encoded), batch):
            part = encoded[i : i + batch]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                out = model(**_collate(part, pad_id, device))
            n = sum(sum(1 for x in e.labels[1:] if x != IGNORE) for e in part)
            total += float(out.loss) * n
            count += n
    model.train()
    return total / count if count else None


def train(spec: TrainSpec, callbacks: Callbacks | None = None) -> TrainResult:
    import torch
    from transformers import get_cosine_schedule_with_warmup

    cb = callbacks or Callbacks()
    hp = spec.hp
    started = time.perf_counter()
    if spec.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    resume_from = checkpoint_step(spec.checkpoint_dir)
    model, tokenizer = _load_model(spec, spec.checkpoint_dir / "adapter" if resume_from else None)
    pad_id = tokenizer.pad_token_id
    train_set = [encode_example(tokenizer, m, hp["max_seq_len"]) for m in spec.train]
    eval_set = [encode_example(tokenizer, m, hp["max_seq_len"]) for m in spec.eval]
    truncated = sum(e.truncated for e in train_set + eval_set)
    if truncated:
        cb.on_log(f"{truncated} examples were longer than max_seq_len {hp['max_seq_len']} and were truncated")
    per_step = hp["batch_size"] * hp["grad_accum"]
    steps_per_epoch = math.ceil(len(train_set) / per_step)
    total = steps_per_epoch * hp["epochs"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=0.0)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(total * hp["warmup_ratio"]), total)
    history: list[dict[str, float]] = []
    torch.manual_seed(hp["seed"])
    if resume_from:
        state = torch.load(spec.checkpoint_dir / CHECKPOINT_STATE, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history = list(state["history"])
        cb.on_log(f"resumed from the checkpoint at step {resume_from} of {total}")
    step = resume_from
    first_loss: float | None = history[0]["loss"] if history else None
    last_loss: float | None = history[-1]["loss"] if history else None
    eval_loss: float | None = None
    window: list[tuple[float, int]] = []
    cuda = spec.device.startswith("cuda")
    try:
        for epoch in range(step // steps_per_epoch, hp["epochs"]):
            batches = _batches(len(train_set), hp["batch_size"], hp["seed"], epoch)
            groups = [batches[i : i + hp["grad_accum"]] for i in range(0, len(batches), hp["grad_accum"])]
            for group in groups[step - epoch * steps_per_epoch :]:
                if cb.should_stop():
                    raise TrainingCancelled()
                t0 = time.perf_counter()
                tokens = 0
                loss_sum = 0.0
                label_total = sum(
                    sum(1 for x in train_set[i].labels[1:] if x != IGNORE) for b in group for i in b
                )
                for batch in group:
                    part = [train_set[i] for i in batch]
                    inputs = _collate(part, pad_id, spec.device)
                    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
                        out = model(**inputs)
                    n = sum(sum(1 for x in e.labels[1:] if x != IGNORE) for e in part)
                    # Weight by answer tokens so accumulation equals one big batch.
                    (out.loss * (n / max(label_total, 1))).backward()
                    loss_sum += float(out.loss) * n
                    tokens += int(inputs["attention_mask"].sum())
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                loss = loss_sum / max(label_total, 1)
                lr = float(scheduler.get_last_lr()[0])
                first_loss = loss if first_loss is None else first_loss
                last_loss = loss
                history.append({"step": step, "loss": round(loss, 5), "lr": lr})
                elapsed = time.perf_counter() - t0
                window = [*window[-19:], (elapsed, tokens)]
                rate = sum(t for _, t in window) / max(sum(s for s, _ in window), 1e-9)
                eta = (total - step) * (sum(s for s, _ in window) / len(window))
                cb.on_step(StepReport(step, total, loss, lr, rate, eta, _peak_mem_mb(spec.device)))
                if step % hp["checkpoint_every"] == 0 and step < total:
                    _save_checkpoint(model, optimizer, scheduler, step, history, spec.checkpoint_dir)
                    cb.on_checkpoint(step)
            eval_loss = _eval_loss(model, eval_set, pad_id, hp["batch_size"], spec.device)
            if eval_loss is not None:
                history.append({"step": step, "eval_loss": round(eval_loss, 5)})
                cb.on_eval(step, eval_loss)
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainingFailed(_oom_message(hp)) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise TrainingFailed(_oom_message(hp)) from exc
        raise
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(spec.output_dir))
    losses = [h["loss"] for h in history if "loss" in h]
    seconds = time.perf_counter() - started
    rates = [w for w in window]
    result = TrainResult(
        steps=step,
        loss_first=losses[0] if losses else first_loss,
        loss_last=losses[-1] if losses else last_loss,
        eval_loss=eval_loss,
        tokens_per_s=(sum(t for _, t in rates) / sum(s for s, _ in rates)) if rates else None,
        peak_mem_mb=_peak_mem_mb(spec.device),
        truncated=truncated,
        resumed_from=resume_from,
        seconds=seconds,
        history=history,
    )
    (spec.output_dir / "training_result.json").write_text(json.dumps(result.__dict__, default=str, indent=1))
    return result
