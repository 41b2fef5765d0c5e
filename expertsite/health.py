"""What /healthz reports: the database, Redis and a live worker for each queue."""

from __future__ import annotations

import time
from typing import TypedDict

import dramatiq
import redis
from django.conf import settings
from django.db import connection

from .heartbeat import heartbeats_by_queue


class PartStatus(TypedDict, total=False):
    ok: bool
    ms: float
    error: str
    detail: dict[str, object]


class HealthReport(TypedDict):
    ok: bool
    parts: dict[str, PartStatus]


def _timed(fn: object) -> PartStatus:
    start = time.perf_counter()
    try:
        detail = fn()  # type: ignore[operator]
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    status: PartStatus = {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 1)}
    if detail:
        status["detail"] = detail
    return status


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"pgvector": row[0] if row else None}


def _redis() -> dict[str, object]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    client.ping()
    return {}


def health_report() -> HealthReport:
    parts: dict[str, PartStatus] = {
        "database": _timed(_database),
        "redis": _timed(_redis),
    }
    if parts["redis"]["ok"]:
        try:
            beats = heartbeats_by_queue()
            broker = dramatiq.get_broker()
            for queue in settings.WORKER_QUEUES:
                workers = beats.get(queue, [])
                depth = broker.do_qsize(queue) if hasattr(broker, "do_qsize") else None
                part: PartStatus = {"ok": bool(workers), "detail": {"workers": len(workers), "depth": depth}}
                if not workers:
                    part["error"] = (
                        f"no live worker on the '{queue}' queue "
                        f"(run `manage.py rundramatiq --queues {queue}`)"
                    )
                parts[f"queue:{queue}"] = part
        except redis.RedisError as exc:
            for queue in settings.WORKER_QUEUES:
                parts[f"queue:{queue}"] = {"ok": False, "error": str(exc)}
    else:
        for queue in settings.WORKER_QUEUES:
            parts[f"queue:{queue}"] = {"ok": False, "error": "redis is down"}
    parts["generation"] = _timed(_generation)
    return {"ok": all(p["ok"] for p in parts.values()), "parts": parts}


def _generation() -> dict[str, object]:
    """Which backend serves each base model; a fallback is reported, not a failure."""
    from chat.generation import backend_name_for

    out: dict[str, object] = {}
    for name in settings.BASE_MODELS:
        backend, note = backend_name_for(name)
        out[name] = {"backend": backend, **({"note": note} if note else {})}
    llamacpp: dict[str, object] = {
        "threads": settings.LLAMACPP_THREADS or "auto",
        "n_ctx": settings.LLAMACPP_N_CTX,
    }
    from chat.generation.llamacpp import OPENMP_WARNING, available, built_with_openmp

    if available() and built_with_openmp():
        llamacpp["note"] = OPENMP_WARNING
    out["llamacpp"] = llamacpp
    return out
