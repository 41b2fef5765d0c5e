"""Training jobs for real: SmolLM2 and a tiny Phi-3 on CPU, through the real broker and workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from chat.models import Mode
from chat.pipeline import answer_collect, answer_prepare
from chat.services import expert_create
from tests.chat.phi3_tiny import build_tiny_phi3
from tests.support import ROOT, child_env
from tests.training.conftest import FACTS, facts_jsonl
from training.models import Adapter, JobStatus, TrainingJob
from training.services import (
    adapter_attach,
    dataset_create_from_upload,
    training_job_cancel,
    training_job_create,
    training_job_retry,
    training_job_run,
)

pytestmark = pytest.mark.slow

FAST = {"lr": 1e-3, "batch_size": 4, "max_seq_len": 128, "warmup_ratio": 0.0}


def wait_for(job: TrainingJob, condition, seconds: float = 1500) -> TrainingJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if condition(job):
            return job
        if job.status in (JobStatus.FAILED,) and not condition(job):
            raise AssertionError(f"job failed: {job.error}\n{job.log}")
        time.sleep(0.3)
    raise AssertionError(f"timed out; job is {job.status} at step {job.step}: {job.log}")


def ask(expert, question: str, mode: str) -> str:
    return answer_collect(answer_prepare(expert=expert, question=question, mode=mode)).text


def test_a_lora_job_teaches_facts_the_base_model_does_not_know(worker, acme, settings) -> None:
    dataset = dataset_create_from_upload(
        team=acme, name="facts", data=facts_jsonl(repeat=1), filename="facts.jsonl", eval_fraction=0.0
    )
    # Six examples in one batch: a step per epoch keeps this to a few minutes on 2 cores.
    job = training_job_create(
        dataset=dataset, hyperparams={**FAST, "epochs": 12, "batch_size": 6, "lr": 2e-3}
    )
    job = wait_for(job, lambda j: j.status == JobStatus.SUCCEEDED)
    losses = [h["loss"] for h in job.history if "loss" in h]
    assert losses[-1] < losses[0] / 3, losses
    assert [h["step"] for h in job.history if "loss" in h] == list(range(1, job.total_steps + 1))
    adapter = Adapter.objects.get(job=job)
    assert (Path(settings.MEDIA_ROOT) / adapter.path / "adapter_config.json").exists()
    assert adapter.metrics["loss_last"] < adapter.metrics["loss_first"]

    expert = expert_create(
        team=acme, name="Facts", slug="facts", mode=Mode.FT, temperature=0.0, max_new_tokens=16
    )
    adapter_attach(adapter=adapter, expert=expert)
    # The job also wrote the adapter for llama.cpp, which serves the packaged GGUF base.
    assert adapter.gguf_path.endswith(".gguf") and "converted for llama.cpp" in job.log
    learned = [answer.split()[0] in ask(expert, q, Mode.FT) for q, answer in FACTS]
    known_before = [answer.split()[0] in ask(expert, q, Mode.BASE) for q, answer in FACTS]
    assert sum(learned) >= 2 and not any(known_before), (learned, known_before)
    # The same adapter through transformers + peft.
    settings.GENERATION_BACKEND = "local"
    learned_local = [answer.split()[0] in ask(expert, q, Mode.FT) for q, answer in FACTS]
    assert sum(learned_local) >= 2, learned_local


def test_a_job_on_a_tiny_phi3_targets_its_fused_modules(acme, tmp_path: Path, settings) -> None:
    settings.BASE_MODELS = {
        **settings.BASE_MODELS,
        "tiny-phi3": {
            "label": "tiny",
            "family": "phi3",
            "gguf": "",
            "path": str(build_tiny_phi3(tmp_path / "phi3")),
        },
    }
    dataset = dataset_create_from_upload(
        team=acme,
        name="facts",
        data=facts_jsonl(repeat=1),
        filename="facts.jsonl",
        base_model="tiny-phi3",
        eval_fraction=0.0,
    )
    job = training_job_create(dataset=dataset, hyperparams={**FAST, "epochs": 1}, enqueue=False)
    training_job_run(job_id=job.pk, worker="test")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    config = json.loads((Path(settings.MEDIA_ROOT) / job.output_dir / "adapter_config.json").read_text())
    targeted = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
    assert {"qkv_proj", "gate_up_proj", "o_proj", "down_proj"} <= targeted


def test_a_base_model_path_that_does_not_exist_is_refused(acme, settings) -> None:
    settings.BASE_MODELS = {
        **settings.BASE_MODELS,
        "gone": {"label": "gone", "family": "phi3", "gguf": "", "path": "/nonexistent/phi3"},
    }
    dataset = dataset_create_from_upload(
        team=acme, name="facts", data=facts_jsonl(repeat=1), filename="facts.jsonl", eval_fraction=0.0
    )
    with pytest.raises(ValueError, match="/nonexistent/phi3 is not a directory"):
        training_job_create(dataset=dataset, base_model="gone", enqueue=False)
    assert not TrainingJob.objects.exists()


def test_cancel_then_retry_resumes_from_the_checkpoint(worker, acme) -> None:
    dataset = dataset_create_from_upload(
        team=acme, name="facts", data=facts_jsonl(repeat=2), filename="facts.jsonl", eval_fraction=0.0
    )
    job = training_job_create(dataset=dataset, hyperparams={**FAST, "epochs": 4, "checkpoint_every": 2})
    job = wait_for(job, lambda j: j.step >= 3)
    training_job_cancel(job=job)
    job = wait_for(job, lambda j: j.status == JobStatus.CANCELLED)
    assert "cancelled at step" in job.log
    training_job_retry(job=job)
    job = wait_for(job, lambda j: j.status == JobStatus.SUCCEEDED)
    assert "resumed from the checkpoint at step" in job.log
    assert [h["step"] for h in job.history if "loss" in h] == list(range(1, job.total_steps + 1))


def test_a_killed_worker_is_taken_over_and_resumes_without_lost_or_doubled_steps(
    transactional_db, redis_client, broker, acme, tmp_path: Path
) -> None:
    env = child_env() | {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TRAINING_STALE_SECONDS": "4",
        "TRAINING_REAP_SECONDS": "1",
        "TRAINING_PROGRESS_SECONDS": "0",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    cmd = [
        sys.executable,
        "manage.py",
        "rundramatiq",
        "--queues",
        "gpu",
        "--processes",
        "1",
        "--threads",
        "1",
    ]

    def start(name: str) -> subprocess.Popen[bytes]:
        out = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the worker
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    dataset = dataset_create_from_upload(
        team=acme, name="facts", data=facts_jsonl(repeat=3), filename="facts.jsonl", eval_fraction=0.0
    )
    first = start("first")
    second = None
    try:
        job = training_job_create(dataset=dataset, hyperparams={**FAST, "epochs": 3, "checkpoint_every": 2})
        job = wait_for(job, lambda j: j.step >= 3)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = job.step
        second = start("second")
        job = wait_for(job, lambda j: j.status == JobStatus.SUCCEEDED)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
    assert job.attempts == 2 and "resumed from the checkpoint at step" in job.log, job.log
    assert killed_at >= 3
    assert [h["step"] for h in job.history if "loss" in h] == list(range(1, job.total_steps + 1))
