"""Dramatiq actors of the `gpu` queue: thin adapters over training.services."""

from __future__ import annotations

import dramatiq
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError

from expertsite.heartbeat import worker_id

from .services import training_job_run

TRANSIENT = (OperationalError, InterfaceError, redis.RedisError, ConnectionError)


def _retry_transient(retries: int, exc: BaseException) -> bool:
    # A failed training is recorded on the job with its reason; only the plumbing retries.
    return retries < 3 and isinstance(exc, TRANSIENT)


@dramatiq.actor(
    queue_name="gpu",
    time_limit=int(settings.TRAINING_TIME_LIMIT_HOURS * 3600 * 1000),
    max_retries=3,
    retry_when=_retry_transient,
    min_backoff=10_000,
)
def training_job_task(job_id: int) -> None:
    training_job_run(job_id=job_id, worker=worker_id())


@dramatiq.actor(queue_name="gpu", time_limit=6 * 3600 * 1000, max_retries=3, retry_when=_retry_transient)
def evaluation_task(run_id: int) -> None:
    from .evaluation import evaluation_run

    evaluation_run(run_id=run_id, worker=worker_id())
