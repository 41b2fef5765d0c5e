"""Worker heartbeats in Redis, so /healthz and the dashboard know which queues have a live worker.

Each worker process refreshes one key per queue it consumes, with a TTL of three
intervals: a worker that dies simply stops refreshing and drops out on its own.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, TypedDict

import redis
from django.conf import settings
from dramatiq.middleware import Middleware

if TYPE_CHECKING:
    from dramatiq import Broker, Worker

KEY_PREFIX = "expertsite:heartbeat"


class Heartbeat(TypedDict):
    worker: str
    queue: str
    pid: int
    host: str
    seen: float


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def heartbeat_beat(*, queues: list[str], client: redis.Redis | None = None) -> None:
    client = client or _client()
    interval = settings.WORKER_HEARTBEAT_SECONDS
    wid = worker_id()
    pipe = client.pipeline()
    for queue in queues:
        beat: Heartbeat = {
            "worker": wid,
            "queue": queue,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "seen": time.time(),
        }
        pipe.set(f"{KEY_PREFIX}:{queue}:{wid}", json.dumps(beat), ex=interval * 3)
    pipe.execute()


def heartbeat_clear(*, queues: list[str], client: redis.Redis | None = None) -> None:
    client = client or _client()
    wid = worker_id()
    client.delete(*[f"{KEY_PREFIX}:{queue}:{wid}" for queue in queues])


def heartbeats_by_queue(*, client: redis.Redis | None = None) -> dict[str, list[Heartbeat]]:
    client = client or _client()
    out: dict[str, list[Heartbeat]] = {q: [] for q in settings.WORKER_QUEUES}
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}:*", count=200))
    if not keys:
        return out
    for raw in client.mget(keys):
        if raw is None:
            continue
        beat: Heartbeat = json.loads(raw)
        out.setdefault(beat["queue"], []).append(beat)
    return out


class HeartbeatMiddleware(Middleware):
    """Starts a daemon thread per worker process that refreshes its heartbeats."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._queues: list[str] = []

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        whitelist = worker.consumer_whitelist
        self._queues = sorted(whitelist or broker.get_declared_queues())
        self._stop.clear()
        threading.Thread(target=self._run, name="heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        try:
            heartbeat_clear(queues=self._queues)
        except redis.RedisError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                heartbeat_beat(queues=self._queues)
            except redis.RedisError:
                pass  # Redis down: /healthz reports Redis itself; keep trying.
            self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS)
