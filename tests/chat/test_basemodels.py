"""Base model registry and the one-time GGUF → Hugging Face conversion, on the real models.

The SmolLM2 conversion runs once per session (about 25 s); the locking and idempotency rules are
also checked with a stand-in converter so that each of them costs milliseconds.
"""

from __future__ import annotations

import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from chat import basemodels
from chat.basemodels import (
    MARKER_NAME,
    BaseModelSpec,
    BaseModelUnavailable,
    UnknownBaseModel,
    base_model_get,
    base_model_hf_dir,
    base_model_is_prepared,
    base_model_marker,
    base_model_prepare,
    load_causal_lm,
)
from tests.chat.phi3_tiny import PHI3_SPECIAL_TOKENS, build_tiny_phi3, packaged_smollm2_gguf

SMOLLM2 = "smollm2-135m-instruct"
PHI3 = "phi-3-mini-4k-instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True)
class Prepared:
    spec: BaseModelSpec
    models_dir: Path
    hf_dir: Path
    seconds: float


@pytest.fixture(scope="session")
def smollm2_spec() -> BaseModelSpec:
    return BaseModelSpec(
        name=SMOLLM2, label="SmolLM2-135M-Instruct", family="smollm2", gguf=packaged_smollm2_gguf(), source=""
    )


@pytest.fixture(scope="session")
def prepared_smollm2(smollm2_spec: BaseModelSpec, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    models_dir = tmp_path_factory.mktemp("models")
    started = time.monotonic()
    hf_dir = base_model_prepare(spec=smollm2_spec, models_dir=models_dir)
    return Prepared(smollm2_spec, models_dir, hf_dir, time.monotonic() - started)


@pytest.fixture(scope="session")
def tiny_phi3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_phi3(tmp_path_factory.mktemp("phi3-tiny"))


def _mostly_printable(text: str) -> bool:
    return bool(text.strip()) and sum(ch.isprintable() or ch.isspace() for ch in text) >= 0.9 * len(text)


def _registry(**entries: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name.replace("_", "-"): entry for name, entry in entries.items()}


# --- The real conversion ---------------------------------------------------------------------


@pytest.mark.slow
def test_prepared_smollm2_loads_with_plain_from_pretrained_and_answers(prepared_smollm2: Prepared) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir = prepared_smollm2.hf_dir
    assert hf_dir == prepared_smollm2.models_dir / SMOLLM2
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", MARKER_NAME):
        assert (hf_dir / name).is_file(), name
    model: Any = AutoModelForCausalLM.from_pretrained(hf_dir)
    tokenizer: Any = AutoTokenizer.from_pretrained(hf_dir)
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.model_max_length == 8192
    # SmolLM2 ties lm_head to the input embeddings; the saved checkpoint must keep the tie.
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    inputs = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert _mostly_printable(answer), answer
    assert "paris" in answer.lower(), answer


@pytest.mark.slow
def test_converted_logits_equal_the_gguf_models_logits(prepared_smollm2: Prepared) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = prepared_smollm2.spec.gguf
    assert gguf is not None
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name).eval()
    converted = AutoModelForCausalLM.from_pretrained(prepared_smollm2.hf_dir).eval()
    tokenizer: Any = AutoTokenizer.from_pretrained(prepared_smollm2.hf_dir)
    prompts = [
        tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False),
        "Invoices are due thirty days after delivery, unless the contract says otherwise.",
    ]
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            expected = reference(input_ids=ids).logits
            actual = converted(input_ids=ids).logits
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_a_second_prepare_returns_at_once_and_rewrites_nothing(prepared_smollm2: Prepared) -> None:
    before = {path: path.stat().st_mtime_ns for path in prepared_smollm2.hf_dir.iterdir()}
    started = time.monotonic()
    hf_dir = base_model_prepare(spec=prepared_smollm2.spec, models_dir=prepared_smollm2.models_dir)
    elapsed = time.monotonic() - started
    assert hf_dir == prepared_smollm2.hf_dir
    assert elapsed < 1.0
    assert {path: path.stat().st_mtime_ns for path in hf_dir.iterdir()} == before
    assert base_model_is_prepared(spec=prepared_smollm2.spec, models_dir=prepared_smollm2.models_dir)
    marker = base_model_marker(spec=prepared_smollm2.spec, models_dir=prepared_smollm2.models_dir)
    assert marker is not None
    assert marker["source_size"] == prepared_smollm2.spec.gguf.stat().st_size  # type: ignore[union-attr]
    assert marker["versions"]["transformers"]


@pytest.mark.slow
def test_load_causal_lm_loads_the_prepared_smollm2(prepared_smollm2: Prepared) -> None:
    model, tokenizer = load_causal_lm(spec=prepared_smollm2.spec, models_dir=prepared_smollm2.models_dir)
    assert not model.training
    assert model.dtype == torch.float32
    assert tokenizer.pad_token == "<|im_end|>"
    half, _ = load_causal_lm(
        spec=prepared_smollm2.spec, models_dir=prepared_smollm2.models_dir, dtype=torch.bfloat16
    )
    assert half.dtype == torch.bfloat16


# --- Phi-3 through a path spec -----------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_phi3_loads_through_a_path_spec_with_its_template_and_fused_modules(
    tiny_phi3_dir: Path,
) -> None:
    registry = _registry(
        phi_3_mini_4k_instruct={"label": "Phi-3", "family": "phi3", "gguf": "", "path": str(tiny_phi3_dir)}
    )
    spec = base_model_get(name=PHI3, registry=registry)
    assert base_model_hf_dir(spec=spec) == tiny_phi3_dir
    assert base_model_prepare(spec=spec) == tiny_phi3_dir

    model: Any
    tokenizer: Any
    model, tokenizer = load_causal_lm(spec=spec)
    assert not model.training
    conversation = [{"role": "system", "content": "Answer briefly."}, *QUESTION]
    text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|system|>\nAnswer briefly.<|end|>\n<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n"
    )
    ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_dict=True)[
        "input_ids"
    ]
    # Each Phi-3 marker is one token, not a string the model has to spell out.
    for token in PHI3_SPECIAL_TOKENS[:3]:
        assert tokenizer.convert_tokens_to_ids(token) in ids
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert {"qkv_proj", "gate_up_proj", "o_proj", "down_proj"} <= names
    assert tokenizer.convert_tokens_to_ids("<|end|>") in model.generation_config.eos_token_id

    inputs = tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


# --- Errors a person can act on ----------------------------------------------------------


def test_an_unknown_name_lists_the_known_ones() -> None:
    registry = _registry(
        smollm2_135m_instruct={"label": "S", "family": "smollm2", "gguf": "/x.gguf", "path": ""}
    )
    with pytest.raises(UnknownBaseModel, match=r"'llama-9000'.*smollm2-135m-instruct"):
        base_model_get(name="llama-9000", registry=registry)


def test_phi3_without_a_path_says_which_setting_to_set() -> None:
    registry = _registry(phi_3_mini_4k_instruct={"label": "Phi-3", "family": "phi3", "gguf": "", "path": ""})
    with pytest.raises(BaseModelUnavailable, match=r"phi-3-mini-4k-instruct: .*set PHI3_MINI_PATH"):
        base_model_get(name=PHI3, registry=registry)


def test_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    registry = _registry(
        phi_3_mini_4k_instruct={"label": "Phi-3", "family": "phi3", "gguf": "", "path": str(missing)}
    )
    with pytest.raises(BaseModelUnavailable, match=r"is not a directory.*PHI3_MINI_PATH"):
        base_model_get(name=PHI3, registry=registry)
    with pytest.raises(BaseModelUnavailable):
        base_model_prepare(spec=basemodels.base_model_spec_from_entry(name=PHI3, entry=registry[PHI3]))


def test_a_directory_without_config_is_unavailable(tmp_path: Path) -> None:
    registry = _registry(
        phi_3_mini_4k_instruct={"label": "Phi-3", "family": "phi3", "gguf": "", "path": str(tmp_path)}
    )
    with pytest.raises(BaseModelUnavailable, match=r"has no config\.json"):
        base_model_get(name=PHI3, registry=registry)


def test_a_missing_gguf_is_unavailable(tmp_path: Path) -> None:
    registry = _registry(
        smollm2_135m_instruct={
            "label": "S",
            "family": "smollm2",
            "gguf": str(tmp_path / "x.gguf"),
            "path": "",
        }
    )
    with pytest.raises(BaseModelUnavailable, match=r"x.gguf does not exist; set SMOLLM2_GGUF"):
        base_model_get(name=SMOLLM2, registry=registry)


def test_a_hub_id_is_accepted_as_given() -> None:
    registry = _registry(
        phi_3_mini_4k_instruct={
            "label": "Phi-3",
            "family": "phi3",
            "gguf": "",
            "path": "microsoft/Phi-3-mini-4k-instruct",
        }
    )
    spec = base_model_get(name=PHI3, registry=registry)
    assert str(base_model_hf_dir(spec=spec)) == "microsoft/Phi-3-mini-4k-instruct"


# --- Idempotency and locking, with a stand-in converter ----------------------------------


class FakeConverter:
    """Writes the files a prepared directory needs, slowly enough for callers to overlap."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, *, spec: BaseModelSpec, source: Path, dest: Path) -> str:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        (dest / "config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("converter crashed")
        for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            (dest / name).write_text(source.read_text())
        return "float32"


@pytest.fixture
def fake_gguf(tmp_path: Path) -> BaseModelSpec:
    source = tmp_path / "src" / "model.gguf"
    source.parent.mkdir()
    source.write_text("weights v1")
    return BaseModelSpec(name="fake-model", label="Fake", family="smollm2", gguf=source, source="")


def _install(monkeypatch: pytest.MonkeyPatch, converter: FakeConverter) -> FakeConverter:
    monkeypatch.setattr(basemodels, "_convert_gguf_to_hf_dir", converter)
    return converter


def test_concurrent_prepares_convert_once(
    fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converter = _install(monkeypatch, FakeConverter(delay=0.3))
    models_dir = tmp_path / "models"
    barrier = threading.Barrier(4)
    results: list[Path] = []
    errors: list[BaseException] = []

    def prepare() -> None:
        barrier.wait()
        try:
            results.append(base_model_prepare(spec=fake_gguf, models_dir=models_dir))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert converter.calls == 1
    assert results == [models_dir / "fake-model"] * 4
    assert base_model_is_prepared(spec=fake_gguf, models_dir=models_dir)
    assert sorted(p.name for p in models_dir.iterdir()) == [".fake-model.lock", "fake-model"]


def test_a_touched_source_is_not_converted_again_but_a_changed_one_is(
    fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converter = _install(monkeypatch, FakeConverter())
    models_dir = tmp_path / "models"
    source = fake_gguf.gguf
    assert source is not None
    hf_dir = base_model_prepare(spec=fake_gguf, models_dir=models_dir)

    later = source.stat().st_mtime_ns + 10_000_000_000
    os.utime(source, ns=(later, later))
    assert not base_model_is_prepared(spec=fake_gguf, models_dir=models_dir)
    base_model_prepare(spec=fake_gguf, models_dir=models_dir)
    assert converter.calls == 1
    assert base_model_is_prepared(spec=fake_gguf, models_dir=models_dir)

    source.write_text("weights v2")
    base_model_prepare(spec=fake_gguf, models_dir=models_dir)
    assert converter.calls == 2
    assert (hf_dir / "model.safetensors").read_text() == "weights v2"
    assert sorted(p.name for p in models_dir.iterdir()) == [".fake-model.lock", "fake-model"]


def test_a_failed_conversion_leaves_nothing_behind(
    fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(monkeypatch, FakeConverter(fail=True))
    models_dir = tmp_path / "models"
    with pytest.raises(RuntimeError, match="converter crashed"):
        base_model_prepare(spec=fake_gguf, models_dir=models_dir)
    assert sorted(p.name for p in models_dir.iterdir()) == [".fake-model.lock"]

    converter = _install(monkeypatch, FakeConverter())
    base_model_prepare(spec=fake_gguf, models_dir=models_dir)
    assert converter.calls == 1


def test_a_directory_without_its_marker_is_redone(
    fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converter = _install(monkeypatch, FakeConverter())
    models_dir = tmp_path / "models"
    half_done = models_dir / "fake-model"
    half_done.mkdir(parents=True)
    (half_done / "config.json").write_text("{}")
    (models_dir / ".fake-model.tmp-killed").mkdir()

    base_model_prepare(spec=fake_gguf, models_dir=models_dir)
    assert converter.calls == 1
    assert (half_done / MARKER_NAME).is_file()
    assert sorted(p.name for p in models_dir.iterdir()) == [".fake-model.lock", "fake-model"]
    assert oct((half_done / "model.safetensors").stat().st_mode & 0o777) == "0o644"


# --- The management command (needs the project's Django settings) --------------------------


@pytest.fixture
def django_settings(request: pytest.FixtureRequest) -> Any:
    if not request.config.pluginmanager.hasplugin("django"):
        pytest.skip("runs under pytest-django with the project's settings")
    return request.getfixturevalue("settings")


def _command_settings(settings: Any, *, models_dir: Path, gguf: Path) -> None:
    settings.MODELS_DIR = models_dir
    settings.DEFAULT_BASE_MODEL = SMOLLM2
    settings.BASE_MODELS = _registry(
        smollm2_135m_instruct={"label": "SmolLM2", "family": "smollm2", "gguf": str(gguf), "path": ""},
        phi_3_mini_4k_instruct={"label": "Phi-3", "family": "phi3", "gguf": "", "path": ""},
    )


def test_prepare_models_converts_then_reports_ready_and_skips_absent_sources(
    django_settings: Any, fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command

    converter = _install(monkeypatch, FakeConverter())
    assert fake_gguf.gguf is not None
    _command_settings(django_settings, models_dir=tmp_path / "models", gguf=fake_gguf.gguf)

    first = io.StringIO()
    call_command("prepare_models", stdout=first)
    assert converter.calls == 1
    assert f"prepared  {SMOLLM2}: {tmp_path / 'models' / SMOLLM2}" in first.getvalue()
    assert "skipped   phi-3-mini-4k-instruct: no source configured; set PHI3_MINI_PATH" in first.getvalue()
    assert "ready     embedding model:" in first.getvalue()

    second = io.StringIO()
    call_command("prepare_models", stdout=second)
    assert converter.calls == 1
    assert f"ready     {SMOLLM2}:" in second.getvalue()
    assert "already prepared" in second.getvalue()


def test_prepare_models_fails_when_the_embedding_model_is_missing(
    django_settings: Any, fake_gguf: BaseModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import CommandError, call_command

    _install(monkeypatch, FakeConverter())
    assert fake_gguf.gguf is not None
    _command_settings(django_settings, models_dir=tmp_path / "models", gguf=fake_gguf.gguf)
    django_settings.EMBEDDING_MODEL_PATH = tmp_path / "no-embedder"
    with pytest.raises(CommandError, match="EMBEDDING_MODEL_PATH"):
        call_command("prepare_models", stdout=io.StringIO())


def test_prepare_models_rejects_an_unknown_name(django_settings: Any) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="unknown base model"):
        call_command("prepare_models", "llama-9000", stdout=io.StringIO())
