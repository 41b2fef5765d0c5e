"""Reapers run by the workers themselves: at boot and then every TRAINING_REAP_SECONDS.

Work a dead worker left behind goes back to the queue: half-indexed documents (ingest)
and training jobs whose heartbeat went silent (gpu). Each reaper is a compare-and-swap
on the rows, so several workers running them at once do no harm.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections
from dramatiq.middleware import Middleware

if TYPE_CHECKING:
    from dramatiq import Broker, Worker

log = logging.getLogger(__name__)


def reap(queues: list[str]) -> dict[str, int]:
    done: dict[str, int] = {}
    if "ingest" in queues:
        from knowledge.services import documents_requeue_abandoned

        done["documents"] = documents_requeue_abandoned()
    if "gpu" in queues:
        from training.services import training_jobs_reap

        done["training_jobs"] = training_jobs_reap()
    return done


class MaintenanceMiddleware(Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self._stop.clear()
        threading.Thread(target=self._run, args=(queues,), name="reaper", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()

    def _run(self, queues: list[str]) -> None:
        while not self._stop.is_set():
            try:
                if done := {k: v for k, v in reap(queues).items() if v}:
                    log.warning("re-queued work a stopped worker left: %s", done)
            except Exception:
                log.exception("reaper failed")
            finally:
                close_old_connections()
            self._stop.wait(settings.TRAINING_REAP_SECONDS)
