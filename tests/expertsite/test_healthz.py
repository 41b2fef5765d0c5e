from __future__ import annotations

import time

import dramatiq
import pytest
from django.test import Client

from expertsite.heartbeat import heartbeats_by_queue


@pytest.mark.django_db
def test_healthz_is_503_when_no_worker_beats(redis_client) -> None:
    resp = Client().get("/healthz")
    body = resp.json()
    assert resp.status_code == 503
    assert body["parts"]["database"]["ok"] is True
    assert body["parts"]["database"]["detail"]["pgvector"].startswith("0.8")
    assert body["parts"]["redis"]["ok"] is True
    assert body["parts"]["queue:ingest"]["ok"] is False
    assert "no live worker" in body["parts"]["queue:ingest"]["error"]


def test_healthz_is_200_once_a_real_worker_serves_every_queue(worker: dramatiq.Worker) -> None:
    # The worker consumes every declared queue; declare both as the real app does.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        beats = heartbeats_by_queue()
        if beats["ingest"] and beats["gpu"]:
            break
        time.sleep(0.2)
    resp = Client().get("/healthz")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["parts"]["queue:gpu"]["detail"]["workers"] >= 1


def test_a_stopped_worker_drops_out_of_the_heartbeats(broker, transactional_db) -> None:
    w = dramatiq.Worker(broker, worker_threads=1)
    w.start()
    deadline = time.monotonic() + 10
    while not heartbeats_by_queue()["ingest"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert heartbeats_by_queue()["ingest"]
    w.stop(timeout=5000)
    assert heartbeats_by_queue()["ingest"] == []
