"""The world the tests run in: real PostgreSQL + pgvector, real Redis, real workers.

Named people in two teams (healthchecks' hc/test.py habit): alice and bob in Acme,
charlie in Globex.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from accounts.models import Role, Team
from accounts.services import membership_set, team_create
from tests.support import ROOT, LiveServer, child_env, free_port, wait_http

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _close_stray_db_sessions(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Async tests and child servers may leave sessions open; the test database can't be
    dropped while they are."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, settings: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def charlie(db: None) -> User:
    return User.objects.create_user("charlie", password="charlie-pass-123")


@pytest.fixture
def acme(alice: User, bob: User) -> Team:
    team = team_create(name="Acme", owner=alice)
    membership_set(team=team, user=bob, role=Role.MEMBER)
    return team


@pytest.fixture
def globex(charlie: User) -> Team:
    return team_create(name="Globex", owner=charlie)


@pytest.fixture
def broker(redis_client: redis.Redis) -> dramatiq.Broker:
    broker = dramatiq.get_broker()
    broker.flush_all()
    return broker


@pytest.fixture
def worker(broker: dramatiq.Broker, transactional_db: None) -> Iterator[dramatiq.Worker]:
    """A real Dramatiq worker on the real Redis broker, in this process's threads.

    Tests that use it need committed rows (transactional_db): the worker's threads use
    their own database connections.
    """
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    w.start()
    yield w
    w.stop(timeout=10_000)
    broker.flush_all()


@pytest.fixture
def asgi_server(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    """The real ASGI app under uvicorn, in a child process, on this run's database."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = child_env()
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "expertsite.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(server.url + "/login/", 60)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# Module scope: Playwright's loop must be gone before an async test module runs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would otherwise take
    # every ORM call in the test for one made from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
