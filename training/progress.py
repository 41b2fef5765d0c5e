"""Training progress as pushed to the job page (channel group training.job.<id>)."""

from __future__ import annotations

from typing import TypedDict

from .models import TrainingJob


class JobEvent(TypedDict):
    type: str  # channels handler: "job.progress"
    id: int
    status: str
    step: int
    total_steps: int
    train_loss: float | None
    eval_loss: float | None
    learning_rate: float | None
    tokens_per_s: float | None
    eta_s: float | None
    peak_mem_mb: float | None
    error: str
    cancel_requested: bool
    last: list[dict[str, float]]


def job_group(job_id: int) -> str:
    return f"training.job.{job_id}"


def job_event(job: TrainingJob) -> JobEvent:
    return {
        "type": "job.progress",
        "id": job.pk,
        "status": job.status,
        "step": job.step,
        "total_steps": job.total_steps,
        "train_loss": job.train_loss,
        "eval_loss": job.eval_loss,
        "learning_rate": job.learning_rate,
        "tokens_per_s": job.tokens_per_s,
        "eta_s": job.eta_s,
        "peak_mem_mb": job.peak_mem_mb,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        # The newest points only: the page has the rest from its first render.
        "last": job.history[-20:],
    }
