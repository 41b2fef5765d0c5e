"""`make run`'s last step, `manage.py up`, for real: prepare, serve, answer, stop cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from accounts.models import Team
from knowledge.models import Document, DocumentStatus
from tests.support import ROOT, child_env, free_port, wait_http

pytestmark = pytest.mark.slow


def test_up_prepares_everything_serves_and_stops_every_child(
    transactional_db, redis_client, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    env = child_env() | {"ADMIN_PASSWORD": "admin-pass-123"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", 180)
        with urllib.request.urlopen(base + "/healthz") as resp:
            health = json.load(resp)
        assert health["ok"] and health["parts"]["queue:ingest"]["detail"]["workers"] == 1
        assert wait_http(base + "/login/", 10) == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # web server and two workers (and their processes)
        demo = Team.objects.get(slug="demo")
        docs = Document.objects.filter(collection__team=demo)
        assert docs.count() == 6 and set(docs.values_list("status", flat=True)) == {DocumentStatus.READY}
        assert "admin account created" in log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
