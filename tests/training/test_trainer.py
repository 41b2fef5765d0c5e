"""The training loop's edges: truncation reported, out-of-memory turned into advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.basemodels import base_model_get
from training import trainer
from training.hyperparams import HyperparamsInvalid, hyperparams_clean
from training.trainer import Callbacks, TrainingFailed, TrainSpec, train

pytestmark = pytest.mark.slow


def spec(tmp_path: Path, **hp: object) -> TrainSpec:
    long = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "Short answer."}]
    short = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    return TrainSpec(
        base=base_model_get(name="smollm2-135m-instruct"),
        method="lora",
        hp=hyperparams_clean({"epochs": 1, "batch_size": 2, "max_seq_len": 64, **hp}),
        train=[long, short],
        eval=[],
        checkpoint_dir=tmp_path / "ckpt",
        output_dir=tmp_path / "out",
    )


def test_sequences_over_the_limit_are_truncated_and_counted(tmp_path: Path) -> None:
    lines: list[str] = []
    result = train(spec(tmp_path), Callbacks(on_log=lines.append))
    assert result.truncated == 1
    assert any("1 examples were longer than max_seq_len 64" in line for line in lines)
    assert (tmp_path / "out" / "adapter_config.json").exists()


def test_out_of_memory_becomes_advice_a_person_can_act_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def oom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "_collate", oom)
    with pytest.raises(
        TrainingFailed, match="out of GPU memory at batch size 2, sequence length 64: lower one"
    ):
        train(spec(tmp_path))


def test_hyperparameters_are_checked_with_their_names() -> None:
    with pytest.raises(HyperparamsInvalid, match="lr must be between"):
        hyperparams_clean({"lr": 5})
    with pytest.raises(HyperparamsInvalid, match="unknown hyperparameter 'foo'"):
        hyperparams_clean({"foo": 1})
    assert hyperparams_clean({"epochs": "2"})["epochs"] == 2
