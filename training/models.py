"""Fine-tuning: datasets, training jobs on the `gpu` queue, and the adapters they produce."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Team


class DatasetSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded file"
    FEEDBACK = "feedback", "Chat answers rated +1"
    GENERATED = "generated", "Generated from a collection"


class Dataset(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=120)
    source = models.CharField(max_length=10, choices=DatasetSource.choices, default=DatasetSource.UPLOAD)
    file = models.FileField(upload_to="training/datasets/", max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    base_model = models.CharField(max_length=80)  # whose tokenizer the statistics use
    eval_fraction = models.FloatField(default=0.1)
    seed = models.PositiveIntegerField(default=0)
    # {"lines": N, "kept": N, "errors": [{"line": N, "error": "..."}], "truncated": N,
    #  "tokens": {"min", "max", "mean", "p95", "total"}, "format": "..."}
    report = models.JSONField(default=dict, blank=True)
    train_count = models.PositiveIntegerField(default=0)
    eval_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name


class Split(models.TextChoices):
    TRAIN = "train"
    EVAL = "eval"


class DatasetExample(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    ordinal = models.PositiveIntegerField()
    split = models.CharField(max_length=5, choices=Split.choices, default=Split.TRAIN)
    # Chat messages, the last one the assistant's answer the loss is computed on.
    messages = models.JSONField()
    token_count = models.PositiveIntegerField(default=0)
    line = models.PositiveIntegerField(null=True, blank=True)  # where it came from in the upload
    source_chunk = models.ForeignKey(
        "knowledge.Chunk", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["dataset_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "ordinal"], name="example_unique_dataset_ordinal")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id}#{self.ordinal}"


class Method(models.TextChoices):
    LORA = "lora", "LoRA"
    QLORA = "qlora", "QLoRA (4-bit NF4 base)"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TrainingJob(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="training_jobs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    base_model = models.CharField(max_length=80)
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.LORA)
    # r, alpha, dropout, lr, epochs, batch_size, grad_accum, max_seq_len, target_modules,
    # checkpoint_every, seed, warmup_ratio: see training.hyperparams.DEFAULTS.
    hyperparams = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    eval_loss = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    peak_mem_mb = models.FloatField(null=True, blank=True)
    # [{"step": n, "loss": x, "lr": y}] and [{"step": n, "eval_loss": x}]: the loss chart.
    history = models.JSONField(default=list, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.method} on {self.base_model})"

    @property
    def checkpoint_dir(self) -> str:
        return f"training/jobs/{self.pk}/checkpoint"

    @property
    def output_dir(self) -> str:
        return f"training/jobs/{self.pk}/adapter"


class Adapter(models.Model):
    """A LoRA adapter on one base model, stored as a peft directory under media storage."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="adapters")
    name = models.CharField(max_length=120)
    base_model = models.CharField(max_length=80)
    job = models.OneToOneField(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="adapter"
    )
    # Directory (relative to MEDIA_ROOT) holding adapter_config.json + adapter_model.safetensors.
    path = models.CharField(max_length=500)
    # The same adapter in llama.cpp's GGUF LoRA format, when converted.
    gguf_path = models.CharField(max_length=500, blank=True)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_model})"


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EvaluationRun(models.Model):
    """The same held-out questions through several modes of one expert, side by side."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="evaluations")
    expert = models.ForeignKey("chat.Expert", on_delete=models.CASCADE, related_name="evaluations")
    name = models.CharField(max_length=160, blank=True)
    modes = models.JSONField(default=list)  # ["base", "rag", "ft", "rag_ft"]
    # [{"question": ..., "answer": ..., "source": ... | None}]
    questions = models.JSONField(default=list)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(
        max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED, db_index=True
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # {mode: {"hit_at_5", "mrr", "f1", "containment", "citation_precision", "refusal_rate",
    #         "p50_ms", "p95_ms", "tokens_per_s", "n"}}
    metrics = models.JSONField(default=dict, blank=True)
    recommendation = models.TextField(blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name or f"evaluation {self.pk}"


class EvaluationResult(models.Model):
    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    mode = models.CharField(max_length=8)
    ordinal = models.PositiveIntegerField()
    question = models.TextField()
    reference = models.TextField()
    source = models.CharField(max_length=500, blank=True)
    answer = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    retrieved = models.JSONField(default=list, blank=True)  # source paths, in rank order
    rank = models.PositiveSmallIntegerField(null=True, blank=True)  # of the first passage from `source`
    f1 = models.FloatField(default=0.0)
    contains = models.BooleanField(default=False)
    citation_precision = models.FloatField(null=True, blank=True)
    refused = models.BooleanField(default=False)
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    tokens_per_s = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run_id", "ordinal", "mode"]
        constraints = [
            models.UniqueConstraint(fields=["run", "mode", "ordinal"], name="result_unique_run_mode_ordinal")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.mode}#{self.ordinal}"
