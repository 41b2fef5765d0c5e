"""Writes of the training side: datasets, jobs (queue, run, cancel, retry, reap), adapters."""

from __future__ import annotations

import hashlib
import logging
import shutil
import statistics
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Team
from chat.basemodels import BaseModelError, base_model_get, base_model_hf_dir, base_model_prepare
from chat.models import Expert, Message, MessageStatus, Role

from .datasets import ColumnMap, DatasetInvalid, ParsedExample, parse_upload, split_indices
from .hyperparams import hyperparams_clean
from .models import Adapter, Dataset, DatasetExample, DatasetSource, JobStatus, Method, Split, TrainingJob
from .progress import job_event, job_group

log = logging.getLogger(__name__)


# --- Datasets ---------------------------------------------------------------------------


def _tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    spec = base_model_get(name=base_model)
    hf_dir = base_model_prepare(spec=spec) if spec.is_gguf else base_model_hf_dir(spec=spec)
    return AutoTokenizer.from_pretrained(str(hf_dir))


def _token_counts(base_model: str, examples: list[ParsedExample]) -> list[int]:
    tokenizer = _tokenizer(base_model)
    counts = []
    for ex in examples:
        ids = tokenizer.apply_chat_template(ex.messages, tokenize=True)
        counts.append(len(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return counts


def _token_stats(counts: list[int]) -> dict[str, float]:
    if not counts:
        return {}
    ordered = sorted(counts)
    return {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "total": sum(ordered),
    }


def _dataset_store(
    *,
    team: Team,
    name: str,
    source: str,
    examples: list[ParsedExample],
    report: dict[str, Any],
    base_model: str,
    eval_fraction: float,
    seed: int,
    created_by: User | None,
    data: bytes = b"",
    filename: str = "",
    source_chunks: list[int | None] | None = None,
) -> Dataset:
    if not examples:
        raise DatasetInvalid("no usable examples: every line had an error", report.get("errors", []))
    train_idx, eval_idx = split_indices(len(examples), eval_fraction=eval_fraction, seed=seed)
    try:
        counts = _token_counts(base_model, examples)  # slow: before the transaction, not in it
    except BaseModelError as exc:
        raise DatasetInvalid(str(exc)) from None
    report = {**report, "kept": len(examples), "tokens": _token_stats(counts)}
    # An uploaded file is identified by its bytes, generated examples by their content.
    digest = hashlib.sha256(data if data else repr([ex.messages for ex in examples]).encode()).hexdigest()
    eval_set = set(eval_idx)
    with transaction.atomic():
        dataset = Dataset(
            team=team,
            name=name,
            source=source,
            base_model=base_model,
            eval_fraction=eval_fraction,
            seed=seed,
            report=report,
            train_count=len(train_idx),
            eval_count=len(eval_idx),
            created_by=created_by,
            sha256=digest,
        )
        if data:
            dataset.file.save(filename or "dataset.jsonl", ContentFile(data), save=False)
        dataset.save()
        DatasetExample.objects.bulk_create(
            [
                DatasetExample(
                    dataset=dataset,
                    ordinal=i,
                    split=Split.EVAL if i in eval_set else Split.TRAIN,
                    messages=ex.messages,
                    token_count=counts[i],
                    line=ex.line,
                    source_chunk_id=(source_chunks[i] if source_chunks else None),
                )
                for i, ex in enumerate(examples)
            ]
        )
    return dataset


def dataset_create_from_upload(
    *,
    team: Team,
    name: str,
    data: bytes,
    filename: str,
    base_model: str = "",
    eval_fraction: float = 0.1,
    seed: int = 0,
    columns: ColumnMap | None = None,
    created_by: User | None = None,
) -> Dataset:
    """Good lines are kept; bad ones are listed by line number in the dataset's report."""
    base_model = base_model or settings.DEFAULT_BASE_MODEL
    parsed = parse_upload(data=data, filename=filename, columns=columns)
    report = {"format": parsed.format, "lines": parsed.lines, "errors": parsed.errors}
    return _dataset_store(
        team=team,
        name=name,
        source=DatasetSource.UPLOAD,
        examples=parsed.examples,
        report=report,
        base_model=base_model,
        eval_fraction=eval_fraction,
        seed=seed,
        created_by=created_by,
        data=data,
        filename=filename,
    )


def dataset_create_from_feedback(
    *,
    team: Team,
    name: str,
    base_model: str = "",
    eval_fraction: float = 0.1,
    seed: int = 0,
    created_by: User | None = None,
) -> Dataset:
    """Answers the team's users rated +1, each with the question it answered."""
    answers = (
        Message.objects.filter(
            role=Role.ASSISTANT, feedback=1, status=MessageStatus.COMPLETE, conversation__expert__team=team
        )
        .select_related("conversation")
        .order_by("created", "id")
    )
    examples: list[ParsedExample] = []
    for answer in answers:
        question = (
            Message.objects.filter(
                conversation=answer.conversation, role=Role.USER, created__lte=answer.created
            )
            .order_by("-created", "-id")
            .first()
        )
        if question and question.content.strip() and answer.content.strip():
            examples.append(
                ParsedExample(
                    line=answer.pk,
                    messages=[
                        {"role": "user", "content": question.content},
                        {"role": "assistant", "content": answer.content.strip()},
                    ],
                )
            )
    report = {"format": "feedback", "lines": len(examples), "errors": []}
    return _dataset_store(
        team=team,
        name=name,
        source=DatasetSource.FEEDBACK,
        examples=examples,
        report=report,
        base_model=base_model or settings.DEFAULT_BASE_MODEL,
        eval_fraction=eval_fraction,
        seed=seed,
        created_by=created_by,
    )


# --- Jobs ---------------------------------------------------------------------------------


def _push(job: TrainingJob) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(job_group(job.pk), dict(job_event(job)))
    except Exception:
        log.warning("could not push progress of job %s", job.pk, exc_info=True)


def training_job_create(
    *,
    dataset: Dataset,
    base_model: str = "",
    method: str = Method.LORA,
    hyperparams: dict[str, Any] | None = None,
    created_by: User | None = None,
    enqueue: bool = True,
) -> TrainingJob:
    base_model = base_model or dataset.base_model
    try:
        base_model_get(name=base_model)
    except BaseModelError as exc:
        raise ValueError(str(exc)) from None
    if method not in Method.values:
        raise ValueError(f"method must be one of {', '.join(Method.values)}")
    if dataset.train_count < 1:
        raise ValueError("the dataset has no training examples")
    with transaction.atomic():
        job = TrainingJob.objects.create(
            team=dataset.team,
            dataset=dataset,
            base_model=base_model,
            method=method,
            hyperparams=dict(hyperparams_clean(hyperparams)),
            created_by=created_by,
        )
        if enqueue:
            training_job_queue(job=job)
    return job


def training_job_queue(*, job: TrainingJob) -> None:
    from .tasks import training_job_task

    job_id = job.pk
    transaction.on_commit(lambda: training_job_task.send(job_id))


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Queued jobs stop at once; a running one stops at its next step (cooperatively)."""
    now = timezone.now()
    TrainingJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished=now, cancel_requested=True
    )
    TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    _push(job)
    return job


def training_job_retry(*, job: TrainingJob) -> TrainingJob:
    """A failed or cancelled job runs again from its last checkpoint, if it left one."""
    updated = TrainingJob.objects.filter(
        pk=job.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]
    ).update(status=JobStatus.QUEUED, cancel_requested=False, error="", finished=None, worker="")
    if not updated:
        raise ValueError(f"only failed or cancelled jobs can be retried (this one is {job.status})")
    with transaction.atomic():
        training_job_queue(job=job)
    job.refresh_from_db()
    _push(job)
    return job


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.TRAINING_STALE_SECONDS)


def _claim(job_id: int, worker: str) -> TrainingJob | None:
    """Compare-and-swap: queued, or running under a worker whose heartbeat went silent."""
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=_stale_before())
    taken = TrainingJob.objects.filter(claimable, pk=job_id, cancel_requested=False).update(
        status=JobStatus.RUNNING, worker=worker, heartbeat_at=now, started=now, error=""
    )
    if not taken:
        return None
    TrainingJob.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
    return TrainingJob.objects.select_related("dataset", "team").get(pk=job_id)


def training_jobs_reap() -> int:
    """Running jobs whose worker went silent go back to the queue (or fail after 3 tries)."""
    count = 0
    for job in TrainingJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=_stale_before()):
        if job.cancel_requested:
            # Its worker died before it saw the cancel: nothing left to resume.
            TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.CANCELLED, finished=timezone.now()
            )
        elif job.attempts >= settings.TRAINING_MAX_ATTEMPTS:
            TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED,
                finished=timezone.now(),
                error=f"the worker stopped answering {job.attempts} times; giving up",
            )
        else:
            updated = TrainingJob.objects.filter(
                pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=_stale_before()
            ).update(status=JobStatus.QUEUED, worker="")
            if updated:
                with transaction.atomic():
                    training_job_queue(job=job)
                count += 1
    return count


def _append_log(job_id: int, line: str) -> None:
    job = TrainingJob.objects.get(pk=job_id)
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    TrainingJob.objects.filter(pk=job_id).update(log=(job.log + f"{stamp} {line}\n")[-50_000:])


def training_job_run(*, job_id: int, worker: str) -> TrainingJob | None:
    """Run one job to its end on this worker (the `gpu` actor calls this)."""
    import time

    from .trainer import Callbacks, StepReport, TrainingCancelled, TrainingFailed, TrainSpec, train

    job = _claim(job_id, worker)
    if job is None:
        return None
    _push(job)
    media = Path(settings.MEDIA_ROOT)
    examples = list(job.dataset.examples.order_by("ordinal").values_list("split", "messages"))
    spec = TrainSpec(
        base=base_model_get(name=job.base_model),
        method=job.method,
        hp=hyperparams_clean(job.hyperparams),
        train=[m for s, m in examples if s == Split.TRAIN],
        eval=[m for s, m in examples if s == Split.EVAL],
        checkpoint_dir=media / job.checkpoint_dir,
        output_dir=media / job.output_dir,
        device=settings.TRAINING_DEVICE or _default_device(),
    )
    last_write = 0.0

    def on_step(r: StepReport) -> None:
        nonlocal last_write
        job.step, job.total_steps, job.train_loss, job.learning_rate = r.step, r.total, r.loss, r.lr
        job.tokens_per_s, job.eta_s, job.peak_mem_mb = r.tokens_per_s, r.eta_s, r.peak_mem_mb
        job.history = [*job.history, {"step": r.step, "loss": round(r.loss, 5), "lr": r.lr}]
        now = time.monotonic()
        if now - last_write >= settings.TRAINING_PROGRESS_SECONDS or r.step == r.total:
            last_write = now
            _save_progress(job)

    def on_eval(step: int, loss: float) -> None:
        job.eval_loss = loss
        job.history = [*job.history, {"step": step, "eval_loss": round(loss, 5)}]
        _save_progress(job)

    def on_checkpoint(step: int) -> None:
        _save_progress(job)
        _append_log(job.pk, f"checkpoint at step {step}")

    def should_stop() -> bool:
        return TrainingJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

    _append_log(job.pk, f"started on {worker} (attempt {job.attempts}, device {spec.device})")
    # The history up to the checkpoint is what a resumed run keeps; later steps are redone.
    from .trainer import checkpoint_step

    resumed = checkpoint_step(spec.checkpoint_dir)
    job.history = [h for h in job.history if h["step"] <= resumed]
    beating = _heartbeat_start(job.pk)
    try:
        result = train(
            spec,
            Callbacks(
                on_step=on_step,
                on_eval=on_eval,
                on_checkpoint=on_checkpoint,
                on_log=lambda line: _append_log(job.pk, line),
                should_stop=should_stop,
            ),
        )
    except TrainingCancelled:
        _finish(job, JobStatus.CANCELLED, "")
        _append_log(job.pk, f"cancelled at step {job.step}")
        return job
    except (TrainingFailed, BaseModelError) as exc:
        _finish(job, JobStatus.FAILED, str(exc))
        return job
    except Exception as exc:
        log.exception("training job %s failed", job.pk)
        _finish(job, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        beating.set()
    job.history = result.history
    job.eval_loss = result.eval_loss
    adapter = Adapter.objects.create(
        team=job.team,
        name=f"{job.dataset.name} · job {job.pk}",
        base_model=job.base_model,
        job=job,
        path=job.output_dir,
        dataset_sha256=job.dataset.sha256,
        metrics={
            "loss_first": result.loss_first,
            "loss_last": result.loss_last,
            "eval_loss": result.eval_loss,
            "tokens_per_s": result.tokens_per_s,
            "peak_mem_mb": result.peak_mem_mb,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "truncated": result.truncated,
            "method": job.method,
            "hyperparams": job.hyperparams,
        },
    )
    if spec.base.is_gguf:
        from .gguf_export import GGUFExportError, adapter_export_gguf

        try:
            gguf = adapter_export_gguf(
                adapter_dir=spec.output_dir, base=spec.base, dest=media / job.output_dir / "adapter.gguf"
            )
            adapter.gguf_path = str(gguf.relative_to(media))
            adapter.save(update_fields=["gguf_path"])
            _append_log(job.pk, f"adapter converted for llama.cpp: {adapter.gguf_path}")
        except GGUFExportError as exc:
            # The transformers backend still serves it; llama.cpp experts will say why not.
            _append_log(job.pk, f"no llama.cpp version of the adapter: {exc}")
    shutil.rmtree(media / job.checkpoint_dir, ignore_errors=True)
    _finish(job, JobStatus.SUCCEEDED, "")
    _append_log(job.pk, f"adapter {adapter.pk} saved to {adapter.path}")
    return job


def _heartbeat_start(job_id: int) -> threading.Event:
    """Beat on the job row while this worker lives, however long one step takes.

    Progress writes alone are not a heartbeat: a step on a busy CPU can outlast
    TRAINING_STALE_SECONDS, and the job's own worker would then look dead to the reaper.
    """
    stop = threading.Event()
    interval = max(0.5, min(30.0, settings.TRAINING_STALE_SECONDS / 4))

    def beat() -> None:
        try:
            while not stop.wait(interval):
                TrainingJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            close_old_connections()

    threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True).start()
    return stop


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _save_progress(job: TrainingJob) -> None:
    TrainingJob.objects.filter(pk=job.pk).update(
        step=job.step,
        total_steps=job.total_steps,
        train_loss=job.train_loss,
        learning_rate=job.learning_rate,
        tokens_per_s=job.tokens_per_s,
        eta_s=job.eta_s,
        peak_mem_mb=job.peak_mem_mb,
        eval_loss=job.eval_loss,
        history=job.history,
        heartbeat_at=timezone.now(),
    )
    _push(job)


def _finish(job: TrainingJob, status: JobStatus, error: str) -> None:
    job.status = status
    job.error = error
    job.finished = timezone.now()
    TrainingJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error,
        finished=job.finished,
        history=job.history,
        eval_loss=job.eval_loss,
        step=job.step,
        heartbeat_at=timezone.now(),
    )
    if error:
        _append_log(job.pk, f"{status}: {error}")
    _push(job)


# --- Adapters -------------------------------------------------------------------------


def adapter_attach(*, adapter: Adapter, expert: Expert) -> Expert:
    """Put the adapter behind an expert; refused when it was trained on another base model."""
    if adapter.team_id != expert.team_id:
        raise ValueError("the adapter and the expert belong to different teams")
    if adapter.base_model != expert.base_model:
        raise ValueError(
            f"adapter '{adapter.name}' was trained on {adapter.base_model}; "
            f"expert '{expert.slug}' uses {expert.base_model}"
        )
    if not (Path(settings.MEDIA_ROOT) / adapter.path / "adapter_config.json").exists():
        raise ValueError(f"adapter '{adapter.name}' is missing from storage ({adapter.path})")
    expert.adapter = adapter
    expert.save(update_fields=["adapter"])
    return expert
