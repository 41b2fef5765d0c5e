"""Dramatiq actors of the `ingest` queue: thin adapters over knowledge.services."""

from __future__ import annotations

import dramatiq
import redis
from django.db import InterfaceError, OperationalError

from .services import documents_index_queued_with

TRANSIENT = (OperationalError, InterfaceError, redis.RedisError, ConnectionError)


def _retry_transient(retries: int, exc: BaseException) -> bool:
    # Parse errors are stored on the row and never retried; a bug is not fixed by retrying.
    return retries < 10 and isinstance(exc, TRANSIENT)


@dramatiq.actor(
    queue_name="ingest",
    time_limit=10 * 60 * 1000,
    max_retries=10,
    retry_when=_retry_transient,
    min_backoff=5_000,
    max_backoff=120_000,
)
def document_index_task(document_id: int) -> None:
    # "busy": a live claim holds it (often this worker's own batch of queued documents);
    # the holder finishes it, or the reaper re-queues it once the claim goes stale.
    documents_index_queued_with(document_id)
