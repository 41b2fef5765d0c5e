"""Chat benchmark: raw engines, the product streamed over its websocket, a burst of clients.

    .venv/bin/python bench/chat.py [--quick] [--clients 20] [--backend auto|local|llamacpp]
        [--sections raw,ws,burst,gpu] [--omp-passive] [--cross-check] [--redis-socket-timeout S]

1. Raw engines on SmolLM2-135M-Instruct: transformers `model.generate` (loaded by
   chat.basemodels.load_causal_lm in the product's dtype, settings.LOCAL_DTYPE, and in float32 for
   reference; 128 new tokens forced) and llama-cpp-python on the packaged GGUF, set up as the
   product's llamacpp backend sets it up. Prefill ms and decode tokens/s for the base expert's
   ~110-token chat prompt and for RAG prompts made by the product's own answer_prepare.
2. The product: the real ASGI server (uvicorn, a child process) asked over /ws/chat/ with the
   `websockets` client; token frames timed client-side, each ask paired with a raw run of the same
   prompt on the engine behind the expert's backend (settings.GENERATION_BACKEND; `auto` means
   llama.cpp for GGUF models when llama-cpp-python is installed). First an idle-socket probe.
3. A burst of N websocket clients asking at once: completion, FCFS queue positions, server RSS.
4. GPU only (torch.cuda.is_available()): full-size Phi-3-mini architecture, random weights, bf16,
   decode tokens/s through the product's LocalBackend versus plain model.generate.

Dev database: it creates (idempotently) the demo data (`demo_load`), a user `bench` in the demo
team and the experts `bench-base`, `bench-rag` and `bench-burst`, and leaves them; the
conversations it creates are deleted at the end. A benchmark, not a test: it asserts nothing.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
# Run as a script, this file's folder heads sys.path and the file's own name would shadow the
# `chat` app; the repository root must come first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "expertsite.settings.dev")

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from chat.models import Expert

# /work/shared/bench/README.md, "CPU references" (this 2-core machine kind): SmolLM2-135M,
# 109-token prompt, 128 new tokens.
REF_DECODE = {"float32": "24", "bfloat16": "43"}
REF_LLAMA_CPP = "218-226 (llama.cpp Q4_1, 2 threads)"
# Same file, H100 rows: plain `generate`, batch 1, 512-token prompt.
REF_GPU_GENERATE = "12.5 decode, TTFT 31.5 ms (H100)"
TARGET_STREAM_RATIO = 0.9
TARGET_TTFT_OVERHEAD_MS = 150.0
TARGET_GPU_DECODE = 100.0

BENCH_USERNAME = "bench"
SLUG_BASE = "bench-base"
SLUG_RAG = "bench-rag"
SLUG_BURST = "bench-burst"
SLUG_FT = "bench-ft"
TARGET_ADAPTER_RATIO = 0.7
DEMO_SLUG = "demo"

# Long enough that the base expert's rendered chat prompt is about 110 tokens, like the reference.
BASE_SYSTEM_PROMPT = (
    "You are a senior field engineer at a pump manufacturer who writes clear technical explanations "
    "for newly hired service technicians. Explain every mechanism in plain language, define each "
    "technical term the first time it appears, use short paragraphs, give concrete numbers where they "
    "help, describe the common failure modes and how to prevent them, and finish with a short summary "
    "of the points the reader should remember. Write for a reader who has never opened a pump before."
)
BASE_QUESTION = "Write a detailed essay about how centrifugal water pumps work."
RAG_QUESTION = "Explain step by step how to replace the mechanical seal on a Corvane pump."


# --- output ---------------------------------------------------------------------------------


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (
            f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
        )
    return str(value)


def note(text: str) -> None:
    print(f"  {text}")
    sys.stdout.flush()


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} cores"


# --- world: demo data, bench user, experts --------------------------------------------------


@dataclass
class World:
    user: User
    session_id: str
    experts: dict[str, Expert]


def expert_upsert(*, slug: str, name: str, fields: dict[str, Any], collections: list[Any]) -> Expert:
    from accounts.models import Team
    from chat.models import Expert
    from chat.services import expert_create

    team = Team.objects.get(slug="demo")
    if Expert.objects.filter(slug=slug).exists():
        Expert.objects.filter(slug=slug).update(team=team, name=name, **fields)
        expert = Expert.objects.get(slug=slug)
        expert.collections.set(collections)
        return expert
    return expert_create(team=team, name=name, slug=slug, collections=collections, **fields)


def world_setup(*, new_tokens: int, burst_tokens: int) -> World:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import Role, Team
    from accounts.services import membership_set
    from chat.models import Expert, Mode
    from knowledge.models import Collection

    call_command("demo_load")
    team = Team.objects.get(slug="demo")
    user, created = User.objects.get_or_create(username=BENCH_USERNAME)
    if created:
        user.set_unusable_password()
        user.save()
    membership_set(team=team, user=user, role=Role.MEMBER)
    demo = Expert.objects.get(slug=DEMO_SLUG)
    demo_collections = list(Collection.objects.filter(team=team, slug="demo"))
    base_fields: dict[str, Any] = {
        "mode": Mode.BASE,
        "base_model": settings.DEFAULT_BASE_MODEL,
        "system_prompt": BASE_SYSTEM_PROMPT,
        "temperature": 0.0,
        "max_new_tokens": new_tokens,
    }
    experts = {
        SLUG_BASE: expert_upsert(slug=SLUG_BASE, name="Bench base", fields=base_fields, collections=[]),
        SLUG_BURST: expert_upsert(
            slug=SLUG_BURST,
            name="Bench burst",
            fields={**base_fields, "max_new_tokens": burst_tokens},
            collections=[],
        ),
        # The demo expert, made deterministic and given five passages.
        SLUG_RAG: expert_upsert(
            slug=SLUG_RAG,
            name="Bench RAG",
            fields={
                "mode": Mode.RAG,
                "base_model": demo.base_model,
                "system_prompt": demo.system_prompt,
                "temperature": 0.0,
                "max_new_tokens": new_tokens,
                "top_k": 5,
            },
            collections=demo_collections,
        ),
        # The base expert with a LoRA adapter on (r 16, all linear layers): what a fine-tuned expert
        # costs per token on each backend.
        SLUG_FT: expert_upsert(
            slug=SLUG_FT,
            name="Bench base + LoRA",
            fields={**base_fields, "mode": Mode.FT, "adapter": bench_adapter(team)},
            collections=[],
        ),
        DEMO_SLUG: demo,
    }
    client = Client()
    client.force_login(user)
    return World(user=user, session_id=client.cookies[settings.SESSION_COOKIE_NAME].value, experts=experts)


def bench_adapter(team: Any) -> Any:
    """A LoRA adapter on the default base, in peft's format and llama.cpp's GGUF, made once.

    Random A and B scaled down, so answers stay close to the base model's (same length, a fair
    tokens/s) while every adapted layer still does the adapter's extra work.
    """
    from django.conf import settings

    from chat.basemodels import base_model_get, base_model_prepare
    from training.gguf_export import adapter_export_gguf
    from training.models import Adapter

    spec = base_model_get(name=settings.DEFAULT_BASE_MODEL)
    relative = f"bench/adapter-{spec.name}"
    adapter_dir = Path(settings.MEDIA_ROOT) / relative
    if not (adapter_dir / "adapter.gguf").exists():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(base_model_prepare(spec=spec)), dtype=torch.float32)
        torch.manual_seed(0)
        config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
        peft_model = get_peft_model(model, config)
        with torch.no_grad():
            for name, weight in peft_model.named_parameters():
                if "lora_B" in name:
                    weight.mul_(0.01)
        peft_model.save_pretrained(str(adapter_dir))
        adapter_export_gguf(adapter_dir=adapter_dir, base=spec, dest=adapter_dir / "adapter.gguf")
    adapter, _ = Adapter.objects.update_or_create(
        team=team,
        name="bench adapter",
        defaults={
            "base_model": spec.name,
            "path": relative,
            "gguf_path": f"{relative}/adapter.gguf",
        },
    )
    return adapter


def world_cleanup(world: World) -> int:
    from chat.models import Conversation

    deleted, _ = Conversation.objects.filter(user=world.user).delete()
    return deleted


# --- 1. raw generate ------------------------------------------------------------------------


@dataclass
class PromptCase:
    label: str
    slug: str
    question: str
    messages: list[Any]
    passages: int | None
    retrieval_ms: float
    ids: list[int] = field(default_factory=list)


@dataclass
class RawRun:
    prefill_ms: float
    decode_tok_s: float | None
    tokens: int
    first_visible_token: int | None
    text: str


@dataclass
class RawResult:
    dtype: str
    case: PromptCase
    runs: list[RawRun]
    plain_prefill_ms: float | None = None
    plain_decode_tok_s: float | None = None

    @property
    def prefill_ms(self) -> float | None:
        return median([r.prefill_ms for r in self.runs])

    @property
    def decode_tok_s(self) -> float | None:
        return median([r.decode_tok_s for r in self.runs if r.decode_tok_s is not None])


class _Clock:
    """A generate() streamer that only notes when each new token arrives (no text decoding)."""

    def __init__(self) -> None:
        self.prompt_seen = False
        self.times: list[float] = []
        self.ids: list[int] = []

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())
        self.ids.extend(int(v) for v in value.reshape(-1).tolist())

    def end(self) -> None:
        pass


def first_visible_token(tokenizer: Any, ids: list[int]) -> int | None:
    """The 1-based token after which TextIteratorStreamer first emits non-empty text.

    It holds text back until a word ends (a space or a newline), so a streamed first token frame
    comes a few decode steps after the first token exists.
    """
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        if text.endswith("\n") or text.rfind(" ") + 1 > 0:
            return k
    return None


def prompt_cases(experts: dict[str, Expert]) -> list[PromptCase]:
    from chat.pipeline import answer_prepare

    cases = []
    for label, slug, question in (
        ("base, short", SLUG_BASE, BASE_QUESTION),
        ("RAG, bench-rag", SLUG_RAG, RAG_QUESTION),
        ("RAG, demo as is", DEMO_SLUG, RAG_QUESTION),
        ("base + LoRA adapter", SLUG_FT, BASE_QUESTION),
    ):
        prepared = answer_prepare(expert=experts[slug], question=question)
        cases.append(
            PromptCase(
                label=label,
                slug=slug,
                question=question,
                messages=list(prepared.request.messages),
                passages=len(prepared.passages) if prepared.passages is not None else None,
                retrieval_ms=prepared.retrieval_ms,
            )
        )
    return cases


def render(tokenizer: Any, messages: list[Any]) -> list[int]:
    # Exactly LocalBackend.render.
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids)


def raw_generate(
    model: Any, tokenizer: Any, ids: list[int], *, new_tokens: int, streamer: Any | None = None
) -> None:
    import torch
    from django.conf import settings

    eos = model.generation_config.eos_token_id
    eos_ids = list(eos) if isinstance(eos, list | tuple) else [eos]
    with torch.inference_mode():
        model.generate(
            input_ids=torch.tensor([ids], device=model.device),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=model.device),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=settings.GENERATION_REPETITION_PENALTY,
            eos_token_id=[e for e in eos_ids if e is not None],
            pad_token_id=tokenizer.pad_token_id,
            streamer=streamer,
        )


def raw_measure(
    model: Any, tokenizer: Any, ids: list[int], *, new_tokens: int, repeats: int, plain: bool
) -> tuple[list[RawRun], float | None, float | None]:
    runs = []
    for _ in range(repeats):
        clock = _Clock()
        started = time.perf_counter()
        raw_generate(model, tokenizer, ids, new_tokens=new_tokens, streamer=clock)
        n = len(clock.times)
        span = clock.times[-1] - clock.times[0] if n > 1 else 0.0
        runs.append(
            RawRun(
                prefill_ms=(clock.times[0] - started) * 1000,
                decode_tok_s=(n - 1) / span if span > 0 else None,
                tokens=n,
                first_visible_token=first_visible_token(tokenizer, clock.ids[:16]),
                text=tokenizer.decode(clock.ids, skip_special_tokens=True),
            )
        )
    if not plain:
        return runs, None, None
    # Cross-check without a streamer: generate(1) is the prefill, generate(N) - generate(1) the decode.
    prefills, totals = [], []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        raw_generate(model, tokenizer, ids, new_tokens=1)
        prefills.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw_generate(model, tokenizer, ids, new_tokens=new_tokens)
        totals.append(time.perf_counter() - t)
    pf, total = statistics.median(prefills), statistics.median(totals)
    return runs, pf * 1000, (new_tokens - 1) / (total - pf) if total > pf else None


class RawLlama:
    """llama-cpp-python alone, set up as the product's llamacpp backend sets it up."""

    def __init__(self) -> None:
        from django.conf import settings
        from llama_cpp import Llama

        from chat.basemodels import base_model_get

        spec = base_model_get(name=settings.DEFAULT_BASE_MODEL)
        self.threads = settings.LLAMACPP_THREADS or os.cpu_count() or 1
        self.llm = Llama(
            model_path=str(spec.gguf),
            n_ctx=settings.LLAMACPP_N_CTX,
            n_threads=self.threads,
            n_batch=512,
            verbose=False,
        )

    def run(self, messages: list[Any], *, new_tokens: int) -> RawRun:
        from django.conf import settings

        # A cold prompt every time: the Llama object would otherwise reuse the previous prompt's
        # cached prefix (the product benefits from that too, but only within one conversation).
        self.llm.reset()
        started = time.perf_counter()
        times: list[float] = []
        parts: list[str] = []
        for chunk in self.llm.create_chat_completion(
            messages=messages,
            max_tokens=new_tokens,
            stream=True,
            temperature=0.0,
            top_p=1.0,
            repeat_penalty=settings.GENERATION_REPETITION_PENALTY,
        ):
            delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index]
            piece = str(delta.get("content") or "")
            if piece:
                times.append(time.perf_counter())
                parts.append(piece)
        n = len(times)
        span = times[-1] - times[0] if n > 1 else 0.0
        return RawRun(
            prefill_ms=(times[0] - started) * 1000 if times else 0.0,
            decode_tok_s=(n - 1) / span if span > 0 else None,
            tokens=n,
            first_visible_token=None,
            text="".join(parts),
        )

    def close(self) -> None:
        self.llm.close()


@dataclass
class RawEngines:
    """What section 2 pairs each ask with: the engine behind the expert's backend."""

    local: tuple[Any, Any] | None = None  # transformers model, tokenizer in settings.LOCAL_DTYPE
    llamacpp: RawLlama | None = None

    def run(self, backend: str, case: PromptCase, *, new_tokens: int) -> RawRun | None:
        if backend == "llamacpp" and self.llamacpp is not None:
            return self.llamacpp.run(case.messages, new_tokens=new_tokens)
        if backend == "local" and self.local is not None:
            from expertsite.torch_thread import torch_call

            model, tokenizer = self.local
            runs, _, _ = torch_call(
                raw_measure, model, tokenizer, case.ids, new_tokens=new_tokens, repeats=1, plain=False
            )
            return runs[0]
        return None

    def close(self) -> None:
        if self.llamacpp is not None:
            self.llamacpp.close()
        self.local = self.llamacpp = None
        gc.collect()


def raw_key(backend: str, slug: str) -> str:
    from django.conf import settings

    return f"{'llamacpp' if backend == 'llamacpp' else settings.LOCAL_DTYPE}/{slug}"


def section_raw(
    cases: list[PromptCase], *, new_tokens: int, repeats: int, full: bool, cross_check: bool
) -> tuple[dict[str, RawResult], RawEngines]:
    """Results keyed f"{dtype or 'llamacpp'}/{slug}"; the engines of section 2, still loaded."""
    import torch
    from django.conf import settings

    from chat.basemodels import base_model_get, load_causal_lm
    from chat.generation import backend_name_for
    from chat.generation.llamacpp import available
    from expertsite.torch_thread import torch_call

    product_backend = backend_name_for(settings.DEFAULT_BASE_MODEL)[0]
    print(
        f"\n== 1. raw engines, SmolLM2-135M-Instruct ({load_line()}, torch threads "
        f"{torch.get_num_threads()}); the product's backend for it: {product_backend}"
    )
    product_dtype = settings.LOCAL_DTYPE
    # The product's dtype last: it stays loaded for section 2's paired runs.
    dtypes = [*(["float32"] if product_dtype != "float32" else []), product_dtype]
    spec = base_model_get(name=settings.DEFAULT_BASE_MODEL)
    results: dict[str, RawResult] = {}
    engines = RawEngines()
    for dtype_name in dtypes:
        t = time.perf_counter()
        # All transformers work on the process's torch thread, as the product runs it: a second
        # OpenMP team (say, the main thread's) would slow every decode step (expertsite.torch_thread).
        model, tokenizer = torch_call(
            load_causal_lm, spec=spec, dtype=getattr(torch, dtype_name), device="cpu"
        )
        load_s = time.perf_counter() - t
        for case in cases:
            case.ids = render(tokenizer, case.messages)
        torch_call(raw_generate, model, tokenizer, cases[0].ids, new_tokens=8)  # warm-up
        for case in cases:
            if case.slug == SLUG_FT:
                continue  # raw engines run no adapter: its prompt is the base case's
            if not full and dtype_name != product_dtype and case.slug != SLUG_BASE:
                continue  # --quick: the float32 reference only for the short prompt
            runs, pf, dec = torch_call(
                raw_measure,
                model,
                tokenizer,
                case.ids,
                new_tokens=new_tokens,
                repeats=repeats,
                plain=cross_check,
            )
            results[f"{dtype_name}/{case.slug}"] = RawResult(
                dtype=dtype_name, case=case, runs=runs, plain_prefill_ms=pf, plain_decode_tok_s=dec
            )
        note(f"transformers {dtype_name}: loaded in {load_s:.1f} s")
        if dtype_name == product_dtype:
            engines.local = (model, tokenizer)
        del model, tokenizer
        gc.collect()
    if available():
        t = time.perf_counter()
        engines.llamacpp = RawLlama()
        note(f"llama.cpp ({engines.llamacpp.threads} threads): loaded in {time.perf_counter() - t:.1f} s")
        engines.llamacpp.run(cases[0].messages, new_tokens=8)  # warm-up
        for case in cases:
            if case.slug == SLUG_FT:
                continue
            runs = [engines.llamacpp.run(case.messages, new_tokens=new_tokens) for _ in range(repeats)]
            results[f"llamacpp/{case.slug}"] = RawResult(dtype="llamacpp", case=case, runs=runs)
    else:
        note("llama-cpp-python is not installed: no llama.cpp rows")

    def engine_label(dtype: str) -> str:
        if dtype == "llamacpp":
            label = "llama.cpp GGUF"
            return label + (" (product)" if product_backend == "llamacpp" else "")
        label = f"transformers {dtype}"
        return label + (" (product)" if product_backend == "local" and dtype == product_dtype else "")

    order = {"llamacpp": 0, product_dtype: 1, "float32": 2}
    rows = []
    for r in sorted(results.values(), key=lambda r: order.get(r.dtype, 3)):
        reference = (
            (REF_LLAMA_CPP if r.dtype == "llamacpp" else REF_DECODE.get(r.dtype, "-"))
            if r.case.slug == SLUG_BASE
            else "-"
        )
        rows.append(
            [
                engine_label(r.dtype),
                r.case.label,
                len(r.case.ids),
                r.case.passages if r.case.passages is not None else "-",
                median([x.tokens for x in r.runs]),
                r.prefill_ms,
                r.decode_tok_s,
                r.plain_prefill_ms,
                r.plain_decode_tok_s,
                r.runs[0].first_visible_token,
                reference,
            ]
        )
    table(
        f"Raw engines: greedy, {new_tokens} new tokens (transformers: forced with min_new_tokens; "
        f"llama.cpp: up to, stops at EOS), repetition penalty {settings.GENERATION_REPETITION_PENALTY}, "
        f"median of {repeats}",
        [
            "engine",
            "prompt",
            "prompt tok",
            "passages",
            "tokens",
            "prefill ms",
            "decode tok/s",
            "prefill ms gen(1)",
            "decode tok/s gen(N)-gen(1)",
            "1st word at tok",
            "reference tok/s",
        ],
        rows,
    )
    note("prompt tok: transformers' tokenizer (the GGUF's may differ by a token or two).")
    note("'1st word at tok': transformers' TextIteratorStreamer emits no text until a word ends, so a")
    note("streamed first frame lags the first token by that many decode steps minus one.")
    return results, engines


# --- 2. the product over its websocket ------------------------------------------------------


@dataclass
class AskResult:
    slug: str
    t_send: float
    t_conversation: float | None = None
    t_first_token: float | None = None
    t_last_token: float | None = None
    t_done: float | None = None
    token_frames: int = 0
    positions: list[tuple[float, int]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    text: str = ""

    @property
    def tokens(self) -> int:
        return int(self.done.get("tokens") or 0) if self.done else 0

    @property
    def ttft_ms(self) -> float | None:
        return (self.t_first_token - self.t_send) * 1000 if self.t_first_token is not None else None

    @property
    def stream_tok_s(self) -> float | None:
        if self.t_first_token is None or self.t_last_token is None or self.tokens < 2:
            return None
        span = self.t_last_token - self.t_first_token
        return (self.tokens - 1) / span if span > 0 else None

    def timing(self, key: str) -> float | None:
        if not self.done:
            return None
        value = (self.done.get("timings") or {}).get(key)
        return float(value) if value is not None else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The real ASGI server as a child process."""

    def __init__(self, *, redis_socket_timeout: float | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "expertsite.settings.dev"}
        self.workaround = ""
        if redis_socket_timeout is not None:
            # redis-py reads connection options from the URL's query string; the child's environment
            # overrides var/services.env, so the product's code and settings stay as they are.
            from django.conf import settings

            url = settings.REDIS_URL
            self.env["REDIS_URL"] = (
                f"{url}{'&' if '?' in url else '?'}socket_timeout={redis_socket_timeout:g}"
            )
            self.workaround = f"REDIS_URL={self.env['REDIS_URL']}"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-chat-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.command = [
            sys.executable,
            "-m",
            "uvicorn",
            "expertsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws",
            "websockets-sansio",
            "--lifespan",
            "off",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self.proc = subprocess.Popen(
            self.command, cwd=_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        raise RuntimeError(f"server did not listen within {timeout:.0f} s:\n{self.tail()}")

    def rss_mb(self) -> float:
        import psutil

        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def threads(self) -> int:
        import psutil

        assert self.proc is not None
        return psutil.Process(self.proc.pid).num_threads()

    def tail(self, lines: int = 40) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with contextlib.suppress(OSError):
            Path(self.log.name).unlink()


async def ws_open(server: Server, session_id: str) -> Any:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    return await connect(
        f"ws://127.0.0.1:{server.port}/ws/chat/",
        origin=Origin(f"http://127.0.0.1:{server.port}"),
        additional_headers={"Cookie": f"sessionid={session_id}"},
        ping_interval=None,
        max_size=None,
        compression=None,
        proxy=None,
        open_timeout=30,
    )


async def ask_send(ws: Any, slug: str, text: str) -> AskResult:
    result = AskResult(slug=slug, t_send=time.perf_counter())
    await ws.send(json.dumps({"type": "ask", "conversation": None, "expert": slug, "text": text}))
    return result


async def ask_receive(ws: Any, result: AskResult, timeout: float = 900.0) -> AskResult:
    from websockets.exceptions import ConnectionClosed

    parts: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                frame = json.loads(await ws.recv())
            except ConnectionClosed as exc:
                result.t_done = time.perf_counter()
                result.error = {"type": "error", "code": "connection_closed", "message": repr(exc)}
                break
            now = time.perf_counter()
            kind = frame.get("type")
            if kind == "conversation":
                result.t_conversation = now
            elif kind == "queued":
                result.positions.append((now, int(frame["position"])))
            elif kind == "token":
                result.t_first_token = result.t_first_token or now
                result.t_last_token = now
                result.token_frames += 1
                parts.append(frame.get("text", ""))
            elif kind == "done":
                result.t_done = now
                result.done = frame
                break
            elif kind == "error":
                result.t_done = now
                result.error = frame
                break
    result.text = "".join(parts)
    return result


async def ask(ws: Any, slug: str, text: str) -> AskResult:
    return await ask_receive(ws, await ask_send(ws, slug, text))


async def idle_probe(server: Server, world: World, *, seconds: float) -> str:
    """'' when a connected, idle websocket is still open after `seconds`, else what happened."""
    from websockets.exceptions import ConnectionClosed

    ws = await ws_open(server, world.session_id)
    started = time.perf_counter()
    try:
        frame = await asyncio.wait_for(ws.recv(), seconds)
        return f"unexpected frame {frame!r}"
    except TimeoutError:
        return ""
    except ConnectionClosed as exc:
        return f"closed by the server after {time.perf_counter() - started:.1f} s idle ({exc!r})"
    finally:
        await ws.close()


def section_probe(world: World, *, redis_socket_timeout: float | None, seconds: float = 12.0) -> bool:
    """Does a websocket survive being idle? Probed on the server exactly as configured, and with the
    workaround when one is asked for. Returns whether the server the later sections use passes."""
    print(f"\n== 2a. websocket idle probe: connect, send nothing, wait {seconds:.0f} s ({load_line()})")
    variants: list[float | None] = [None]
    if redis_socket_timeout is not None:
        variants.append(redis_socket_timeout)
    rows, passed = [], False
    for timeout in variants:
        server = Server(redis_socket_timeout=timeout)
        try:
            server.start()
            problem = asyncio.run(idle_probe(server, world, seconds=seconds))
            cause = ""
            if problem:
                lines = [line for line in server.tail(60).splitlines() if "Error" in line or "error" in line]
                cause = lines[-1].strip() if lines else ""
        finally:
            server.stop()
        passed = not problem
        rows.append(
            [
                "as configured" if timeout is None else f"with {server.workaround}",
                "yes" if not problem else "NO",
                problem or "-",
                cause or "-",
            ]
        )
    table("Idle websocket", ["server", "open after wait", "what happened", "server log"], rows)
    if not passed:
        note("An idle /ws/chat/ connection died. Seen before: channels_redis blocks in BZPOPMIN for 5 s")
        note("(brpop_timeout) and redis-py 8's default socket_timeout is also 5 s, so the read timed out")
        note("first and crashed the consumer (fixed by a socket_timeout on the CHANNEL_LAYERS host). Rerun")
        note("with --redis-socket-timeout 30 to measure sections 2-3 with that workaround (child REDIS_URL).")
    return passed


def section_ws(
    server: Server,
    world: World,
    cases: list[PromptCase],
    raw: dict[str, RawResult],
    engines: RawEngines,
    *,
    repeats: int,
    new_tokens: int,
) -> None:
    """Each ask is paired with a raw run of the same prompt on the engine behind the expert's backend,
    just before it, in this process while the server idles: on a shared 2-core machine the load
    drifts, and a ratio of two measurements taken seconds apart drifts much less.

    bench-ft is the base expert with a LoRA adapter: its raw pair is the bare engine on the same
    prompt, so its ratio is what the adapter costs (target >= 0.7).

    No two RAG asks follow each other (another ask sits between them): llama.cpp reuses the previous
    prompt's cached prefix, and bench-rag's prompt and the demo's share all but a passage. One last
    ask repeats the demo's prompt at once, to show what that cache is worth.
    """
    from django.conf import settings

    from chat.generation import backend_name_for

    print(f"\n== 2. the product over ws://127.0.0.1:{server.port}/ws/chat/ ({load_line()})")
    by_slug = {c.slug: c for c in cases}
    # The child server inherits this process's environment, so it resolves the same backends.
    backends = {slug: backend_name_for(world.experts[slug].base_model)[0] for slug in by_slug}
    schedule = [SLUG_BASE, SLUG_RAG, SLUG_FT, DEMO_SLUG]
    cached = f"{DEMO_SLUG}, asked again"
    pairs: dict[str, list[tuple[RawRun | None, AskResult]]] = {k: [] for k in [*by_slug, cached]}

    async def run() -> None:
        ws = await ws_open(server, world.session_id)

        async def one(slug: str, key: str, paired: bool) -> None:
            nonlocal ws
            case = by_slug[slug]
            raw_run = None
            if paired:
                # In a thread: the open socket must keep answering the server's pings.
                raw_run = await asyncio.to_thread(engines.run, backends[slug], case, new_tokens=new_tokens)
            result = await ask(ws, slug, case.question)
            pairs[key].append((raw_run, result))
            if result.error and result.error.get("code") == "connection_closed":
                ws = await ws_open(server, world.session_id)

        try:
            # Warm-up: loads the model and the embedder in the server, first-touches its code paths.
            for slug, question in ((SLUG_BASE, BASE_QUESTION), (SLUG_RAG, RAG_QUESTION)):
                warm = await ask(ws, slug, question)
                if warm.error:
                    note(f"warm-up ask to {slug} failed: {warm.error}")
                    if warm.error.get("code") == "connection_closed":
                        ws = await ws_open(server, world.session_id)
            for _ in range(repeats):
                for slug in schedule:
                    await one(slug, slug, paired=True)
            await one(DEMO_SLUG, cached, paired=False)
        finally:
            await ws.close()

    t = time.perf_counter()
    asyncio.run(run())
    note(
        f"server RSS after warm-up and {repeats} round(s): {server.rss_mb():.0f} MB "
        f"({time.perf_counter() - t:.0f} s)"
    )

    rows_speed, rows_ttft, checks = [], [], []
    for key, results in pairs.items():
        slug = DEMO_SLUG if key == cached else key
        case = by_slug[slug]
        backend = backends[slug]
        errors = [a.error for _, a in results if a.error]
        if errors:
            note(f"{key}: errors {errors}")
        good = [(r, a) for r, a in results if a.done]
        if not good:
            continue
        raw_result = raw.get(raw_key(backend, slug))
        if key == cached and raw_result is not None:
            # Compared with the cold prompt's raw figures on the same engine (section 1).
            good = [(raw_result.runs[0], a) for _, a in good]
        expert = world.experts[slug]
        engine = "llama.cpp" if backend == "llamacpp" else f"transformers {settings.LOCAL_DTYPE}"
        stream = median([a.stream_tok_s for _, a in good])
        ratios = [a.stream_tok_s / r.decode_tok_s for r, a in good if r and r.decode_tok_s and a.stream_tok_s]
        rows_speed.append(
            [
                f"{key} ({expert.mode}, T={expert.temperature:g})",
                backend,
                len(good),
                median([a.tokens for _, a in good]),
                median([a.token_frames for _, a in good]),
                stream,
                median([a.done.get("tokens_per_s") if a.done else None for _, a in good]),
                median([r.decode_tok_s if r else None for r, _ in good]),
                median(ratios),
                raw_result.decode_tok_s if raw_result else None,
                f">= {TARGET_ADAPTER_RATIO if slug == SLUG_FT else TARGET_STREAM_RATIO}",
            ]
        )
        ttft = median([a.ttft_ms for _, a in good])
        overheads = [a.ttft_ms - r.prefill_ms for r, a in good if r and a.ttft_ms is not None]
        server_ttft = median(
            [float(a.done["ttft_ms"]) if a.done and a.done.get("ttft_ms") else None for _, a in good]
        )
        retrieval = median([a.timing("retrieval_ms") for _, a in good])
        prompt = median([a.timing("prompt_ms") for _, a in good])
        prefill = median([a.timing("prefill_ms") for _, a in good])
        pipeline = sum(v or 0 for v in (retrieval, prompt, prefill))
        rows_ttft.append(
            [
                key,
                engine,
                len(case.ids),
                ttft,
                median([r.prefill_ms if r else None for r, _ in good]),
                median(overheads),
                f"<= {TARGET_TTFT_OVERHEAD_MS:.0f}",
                server_ttft,
                retrieval,
                prompt,
                prefill,
                server_ttft - pipeline if server_ttft is not None else None,
                ttft - server_ttft if ttft is not None and server_ttft is not None else None,
                median([(a.t_done - a.t_last_token) * 1000 for _, a in good if a.t_done and a.t_last_token]),
            ]
        )
        if raw_result is not None and expert.temperature == 0 and key != cached:
            reference = " ".join(raw_result.runs[0].text.split())
            same = all(reference.startswith(" ".join(a.text.split())[:200]) for _, a in good)
            checks.append(
                f"{key}: streamed text starts like the raw {engine} greedy text: {'yes' if same else 'NO'}"
            )
    table(
        "Streamed decode (median; raw = the engine behind the backend, same prompt, run just before the ask)",
        [
            "expert",
            "backend",
            "asks",
            "tokens",
            "token frames",
            "streamed tok/s",
            "server tok/s",
            "raw tok/s",
            "streamed/raw",
            "raw tok/s (sec. 1)",
            "target",
        ],
        rows_speed,
    )
    table(
        "Time to first token (ms): client = ask sent -> first token frame; server split from done.timings",
        [
            "expert",
            "raw engine",
            "prompt tok",
            "client TTFT",
            "raw prefill",
            "overhead",
            "target",
            "server ttft",
            "retrieval",
            "prompt",
            "prefill",
            "1st-word wait",
            "outside pipeline",
            "last token->done",
        ],
        rows_ttft,
    )
    note("overhead = client TTFT - raw prefill of the same prompt (median of the pairs; for")
    note(f"'{cached}' the cold raw prefill of section 1: the product reuses the cached prompt).")
    note("1st-word wait = server ttft - (retrieval + prompt + prefill): decode steps before the first")
    note("non-empty piece. outside pipeline = client TTFT - server ttft: websocket, conversation and")
    note("message writes, history read, before the queue. streamed tok/s = (tokens-1)/(last-first frame).")
    for line in checks:
        note(line)


# --- 3. burst -------------------------------------------------------------------------------


@dataclass
class BurstResult:
    asks: list[AskResult]
    wall_s: float
    rss_before: float
    rss_after: float


def burst_once(server: Server, world: World, *, clients: int) -> BurstResult:
    async def run() -> tuple[list[AskResult], float]:
        sockets = await asyncio.gather(*(ws_open(server, world.session_id) for _ in range(clients)))
        try:
            started = time.perf_counter()
            # Send all asks back to back, in list order (= send order), then read every socket.
            sent = [await ask_send(ws, SLUG_BURST, BASE_QUESTION) for ws in sockets]
            asks = await asyncio.gather(*(ask_receive(ws, r) for ws, r in zip(sockets, sent, strict=True)))
            return list(asks), time.perf_counter() - started
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    rss_before = server.rss_mb()
    asks, wall = asyncio.run(run())
    time.sleep(1.0)  # let the server finish writing and drop the closed connections
    gc.collect()
    return BurstResult(asks=asks, wall_s=wall, rss_before=rss_before, rss_after=server.rss_mb())


def section_burst(server: Server, world: World, *, clients: int, bursts: int, burst_tokens: int) -> None:
    print(
        f"\n== 3. {clients} concurrent websocket clients, expert {SLUG_BURST} ({burst_tokens} new tokens) "
        f"({load_line()})"
    )
    results = []
    for n in range(bursts):
        results.append(burst_once(server, world, clients=clients))
        note(f"burst {n + 1} done in {results[-1].wall_s:.1f} s")
    for n, burst in enumerate(results, 1):
        asks = burst.asks
        completed = [a for a in asks if a.done]
        errors = [a for a in asks if a.error]
        inf = float("inf")
        completion = sorted(range(len(asks)), key=lambda i: asks[i].t_done or inf)
        # The server's arrival order, seen from here: the `conversation` frame is sent right after
        # the conversation row is written, before the generation queue. Asks sent microseconds
        # apart on separate sockets can reach the server in another order than they were sent.
        arrival = sorted(range(len(asks)), key=lambda i: asks[i].t_conversation or inf)
        rows = []
        fair_sent = fair_arrival = 0
        for i, a in enumerate(asks):
            # Unfinished when this client asked: those that asked before it and were done later.
            by_send = sum(1 for b in asks[:i] if (b.t_done or inf) > a.t_send)
            t_arrival = a.t_conversation or inf
            before = [asks[j] for j in arrival[: arrival.index(i)]]
            by_arrival = sum(1 for b in before if (b.t_done or inf) > t_arrival)
            first = a.positions[0][1] if a.positions else 0
            seen = [p for _, p in a.positions]
            countdown = seen == list(range(first, 0, -1))
            fair_sent += first == by_send and countdown
            ok = first == by_arrival and countdown
            fair_arrival += ok
            rows.append(
                [
                    i,
                    arrival.index(i),
                    completion.index(i),
                    by_send,
                    by_arrival,
                    first if a.positions else "- (none)",
                    " ".join(map(str, seen))
                    if len(seen) <= 8
                    else f"{seen[0]}..{seen[-1]} ({len(seen)} frames)",
                    "yes" if ok else "NO",
                    a.ttft_ms,
                    ((a.t_done or a.t_send) - a.t_send),
                    a.tokens,
                    a.error.get("code") if a.error else "",
                ]
            )
        table(
            f"Burst {n}: per client, in send order",
            [
                "sent #",
                "arrived #",
                "done #",
                "expected pos (sent)",
                "expected pos (arrived)",
                "first queued",
                "positions seen",
                "FCFS",
                "TTFT ms",
                "total s",
                "tokens",
                "error",
            ],
            rows,
        )
        tokens = sum(a.tokens for a in completed)
        note(
            f"completed {len(completed)}/{len(asks)}, errors {len(errors)}; completion order == send order: "
            f"{'yes' if completion == list(range(len(asks))) else 'NO ' + str(completion)}; "
            f"== arrival order: {'yes' if completion == arrival else 'NO'}"
        )
        note(
            f"queue positions as expected: by send order {fair_sent}/{len(asks)}, "
            f"by arrival order {fair_arrival}/{len(asks)}"
        )
        note(
            f"wall {burst.wall_s:.1f} s, aggregate {tokens / burst.wall_s:.1f} tokens/s "
            f"({tokens} tokens), server RSS {burst.rss_before:.0f} -> {burst.rss_after:.0f} MB"
        )
    table(
        "Server memory (RSS, MB)",
        [
            "before burst 1",
            *[f"after burst {n}" for n in range(1, len(results) + 1)],
            "growth",
            "threads now",
        ],
        [
            [
                results[0].rss_before,
                *[r.rss_after for r in results],
                results[-1].rss_after - results[0].rss_before,
                server.threads(),
            ]
        ],
    )


# --- 4. GPU: full-size Phi-3-mini through LocalBackend ----------------------------------------


PHI3_MINI_CONFIG: dict[str, Any] = {
    "vocab_size": 32064,
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "pad_token_id": 32000,
    "bos_token_id": 1,
    "eos_token_id": 32000,
}
# Phi-3-mini's special-token ids.
PHI3_SPECIALS = {
    "<unk>": 0,
    "<s>": 1,
    "</s>": 2,
    "<|endoftext|>": 32000,
    "<|assistant|>": 32001,
    "<|system|>": 32006,
    "<|end|>": 32007,
    "<|user|>": 32010,
}


def build_random_phi3(dest: Path, *, config: dict[str, Any], device: str) -> None:
    """Random-weight Phi-3 (bf16) plus a word-level tokenizer with Phi-3's vocabulary size and ids.

    No Phi-3 tokenizer is available offline; the speed of decoding does not depend on it, only on
    the vocabulary size, which this one keeps (word "w<i>" is id i).
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, GenerationConfig, Phi3Config, PreTrainedTokenizerFast

    from chat.basemodels import PHI3_CHAT_TEMPLATE

    vocab_size = int(config["vocab_size"])
    by_id = {i: f"w{i}" for i in range(vocab_size)}
    for token, i in PHI3_SPECIALS.items():
        if i < vocab_size:
            by_id[i] = token
    word_level = Tokenizer(models.WordLevel({t: i for i, t in by_id.items()}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    word_level.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    word_level.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t, i in PHI3_SPECIALS.items() if i < vocab_size]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=word_level,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = PHI3_CHAT_TEMPLATE
    tokenizer.model_max_length = int(config["max_position_embeddings"])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(Phi3Config(**config), dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(
        bos_token_id=config.get("bos_token_id"),
        eos_token_id=[config["eos_token_id"], PHI3_SPECIALS["<|end|>"]],
        pad_token_id=config.get("pad_token_id"),
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def gpu_measure(
    *, config: dict[str, Any], device: str, prompt_tokens: int, new_tokens: int, repeats: int
) -> list[list[object]]:
    """Rows: LocalBackend.stream vs plain generate on the same loaded model, same prompt."""
    import torch
    from django.conf import settings

    from chat.generation import GenerationRequest, GenerationStats
    from chat.generation.local import LocalBackend
    from chat.prompting import ChatMessage

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    name = "bench-phi3-random"
    tmp = Path(tempfile.mkdtemp(prefix="bench-phi3-"))
    saved = (settings.LOCAL_DEVICE, settings.LOCAL_DTYPE, settings.BASE_MODELS.get(name))
    try:
        t = time.perf_counter()
        build_random_phi3(tmp, config=config, device=device)
        note(
            f"random Phi-3 ({config['num_hidden_layers']} layers) built and saved in "
            f"{time.perf_counter() - t:.0f} s"
        )
        settings.BASE_MODELS[name] = {"label": name, "family": "phi3", "gguf": "", "path": str(tmp)}
        settings.LOCAL_DEVICE = device
        settings.LOCAL_DTYPE = "bfloat16"
        backend = LocalBackend()
        loaded = backend.loaded(name)
        model, tokenizer = loaded.model, loaded.tokenizer
        # Words w<i>: one token each; the chat template adds <|user|>, <|end|> and <|assistant|>.
        words = " ".join(f"w{(i * 7919) % 32000 + 3}" for i in range(prompt_tokens - 3))
        messages: list[ChatMessage] = [{"role": "user", "content": words}]
        ids = backend.render(name, messages)
        request = GenerationRequest(
            base_model=name, messages=messages, max_new_tokens=new_tokens, temperature=0.0, adapter=None
        )

        def product_once() -> tuple[float, float | None, int, float | None]:
            stats = GenerationStats()
            times: list[float] = []
            sync()
            for _ in backend.stream(request, stop=threading.Event(), stats=stats):
                times.append(time.perf_counter())
            sync()
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            # Pieces are words here, one token each after the first.
            own = stats.tokens / stats.decode_s if stats.decode_s > 0 else None
            return stats.prefill_ms, (len(times) - 1) / span if span > 0 else None, stats.tokens, own

        def plain_once() -> tuple[float, float | None, int]:
            clock = _Clock()
            sync()
            started = time.perf_counter()
            raw_generate(model, tokenizer, ids, new_tokens=new_tokens, streamer=clock)
            sync()
            n = len(clock.times)
            span = clock.times[-1] - clock.times[0] if n > 1 else 0.0
            return (clock.times[0] - started) * 1000, (n - 1) / span if span > 0 else None, n

        product_once()  # warm-up (kernels, allocator)
        plain_once()
        product = [product_once() for _ in range(repeats)]
        plain = [plain_once() for _ in range(repeats)]
        return [
            [
                "LocalBackend.stream (product)",
                len(ids),
                median([p[0] for p in product]),
                median([p[1] for p in product if p[1]]),
                median([p[3] for p in product if p[3]]),
                median([p[2] for p in product]),
                f">= {TARGET_GPU_DECODE:.0f}",
            ],
            [
                "plain model.generate",
                len(ids),
                median([p[0] for p in plain]),
                median([p[1] for p in plain if p[1]]),
                "-",
                median([p[2] for p in plain]),
                REF_GPU_GENERATE,
            ],
        ]
    finally:
        settings.LOCAL_DEVICE, settings.LOCAL_DTYPE = saved[0], saved[1]
        if saved[2] is None:
            settings.BASE_MODELS.pop(name, None)
        else:
            settings.BASE_MODELS[name] = saved[2]
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        shutil.rmtree(tmp, ignore_errors=True)


def section_gpu(*, new_tokens: int, repeats: int) -> None:
    import torch

    print("\n== 4. GPU: full-size Phi-3-mini architecture (random weights, bf16), batch 1, 512-token prompt")
    if not torch.cuda.is_available():
        note("skipped: no GPU")
        return
    note(f"device: {torch.cuda.get_device_name(0)}")
    rows = gpu_measure(
        config=PHI3_MINI_CONFIG, device="cuda", prompt_tokens=512, new_tokens=new_tokens, repeats=repeats
    )
    table(
        f"Decode, greedy, {new_tokens} new tokens (plain generate forced; the product may stop at EOS)",
        [
            "path",
            "prompt tok",
            "prefill ms",
            "decode tok/s",
            "product's own tok/s",
            "tokens",
            "target / reference",
        ],
        rows,
    )


# --- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a ~2 minute smoke run: fewer tokens and clients"
    )
    parser.add_argument(
        "--clients", type=int, default=None, help="concurrent clients in section 3 (20; quick 5)"
    )
    parser.add_argument(
        "--sections", default="raw,ws,burst,gpu", help="comma-separated subset of raw,ws,burst,gpu"
    )
    parser.add_argument(
        "--cross-check",
        action="store_true",
        help="section 1 also times generate(1) and generate(N) without a streamer (doubles its time)",
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "local", "llamacpp"],
        default=None,
        help="GENERATION_BACKEND for this process and the server (default: as configured; the product's "
        "'auto' serves GGUF models with llama.cpp when it is installed, 'local' is transformers)",
    )
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for this process and the server (not the product's default: shows "
        "what it changes when other processes compete for the cores)",
    )
    parser.add_argument(
        "--redis-socket-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run the measured server with ?socket_timeout=SECONDS on REDIS_URL (works around the "
        "5 s idle-websocket crash that the idle probe reports); default: the product as configured",
    )
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    new_tokens = 32 if args.quick else 128
    repeats = 1 if args.quick else 3
    burst_tokens = 16 if args.quick else 32
    clients = args.clients or (5 if args.quick else 20)

    # `timeout` and friends send SIGTERM: turn it into SystemExit so the finally below stops the server.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.backend:
        # Read by the settings at import: set before django.setup(); the server inherits it.
        os.environ["GENERATION_BACKEND"] = args.backend
        if os.environ.get("GENERATION_BACKENDS"):
            print("warning: GENERATION_BACKENDS is set and overrides --backend per model", file=sys.stderr)
    if args.omp_passive:
        # Must be set before torch (and its OpenMP runtime) is imported; the server inherits it.
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import django

    django.setup()
    import torch
    import transformers

    started = time.perf_counter()
    print(
        f"bench/chat.py{' --quick' if args.quick else ''}: torch {torch.__version__}, transformers "
        f"{transformers.__version__}, {os.cpu_count()} CPUs, {load_line()}"
    )
    from django.conf import settings

    from chat.generation import backend_name_for

    note(
        f"GENERATION_BACKEND={settings.GENERATION_BACKEND}: {settings.DEFAULT_BASE_MODEL} is served by "
        f"'{backend_name_for(settings.DEFAULT_BASE_MODEL)[0]}', LOCAL_DTYPE={settings.LOCAL_DTYPE}, "
        f"LLAMACPP_THREADS={settings.LLAMACPP_THREADS or 'all cores'}, "
        f"LLAMACPP_QUANT={settings.LLAMACPP_QUANT or '(as packaged)'} (raw llama.cpp rows: the packaged file)"
    )
    note(
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
        f"torch threads {torch.get_num_threads()}"
    )
    if "gpu" in sections and sections == {"gpu"}:
        section_gpu(new_tokens=new_tokens, repeats=repeats)
        return 0

    world = world_setup(new_tokens=new_tokens, burst_tokens=burst_tokens)
    server: Server | None = None
    try:
        cases = prompt_cases(world.experts)
        raw: dict[str, RawResult] = {}
        engines = RawEngines()
        if "raw" in sections or "ws" in sections:
            raw, engines = section_raw(
                cases,
                new_tokens=new_tokens,
                repeats=repeats,
                full=not args.quick,
                cross_check=args.cross_check,
            )
        if "ws" in sections or "burst" in sections:
            probe_ok = section_probe(world, redis_socket_timeout=args.redis_socket_timeout)
            server = Server(redis_socket_timeout=args.redis_socket_timeout)
            t = time.perf_counter()
            server.start()
            note(
                f"\nserver: {' '.join(server.command[1:])} (pid {server.proc.pid if server.proc else '?'}, "
                f"listening after {time.perf_counter() - t:.1f} s)"
                + (f"; {server.workaround}" if server.workaround else "")
            )
            if not probe_ok:
                note("measuring anyway: expect connection_closed errors below")
            if "ws" in sections:
                section_ws(server, world, cases, raw, engines, repeats=repeats, new_tokens=new_tokens)
            engines.close()
            if "burst" in sections:
                if "ws" not in sections:
                    asyncio.run(_warm(server, world))
                section_burst(server, world, clients=clients, bursts=2, burst_tokens=burst_tokens)
    except Exception:
        if server is not None:
            print(f"\nserver log tail:\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.stop()
        deleted = world_cleanup(world)
        note(
            f"\ncleanup: server stopped; {deleted} bench rows (conversations, messages) deleted; "
            f"user '{BENCH_USERNAME}' and experts {SLUG_BASE}, {SLUG_RAG}, {SLUG_BURST} kept"
        )
    if "gpu" in sections:
        section_gpu(new_tokens=new_tokens, repeats=repeats)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, {load_line()}")
    return 0


async def _warm(server: Server, world: World) -> None:
    ws = await ws_open(server, world.session_id)
    try:
        await ask(ws, SLUG_BURST, BASE_QUESTION)
    finally:
        await ws.close()


if __name__ == "__main__":
    raise SystemExit(main())
