"""Everything `make run` does once the services are up: prepare, then serve until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, prepare models, admin account and demo, then run the web server and workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.WEB_HOST)
        parser.add_argument("--port", type=int, default=settings.WEB_PORT)
        parser.add_argument("--no-prepare", action="store_true", help="skip migrations, models and demo")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_prepare"]:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("database: migrated")
            call_command("prepare_models")
            call_command("ensure_admin")
            call_command("demo_load")
            call_command("collectstatic", interactive=False, verbosity=0)
        self._serve(options["host"], options["port"])

    def _serve(self, host: str, port: int) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children = {
            "web": [
                sys.executable,
                "-m",
                "uvicorn",
                "expertsite.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
            ],
            "worker:ingest": [
                *manage,
                "rundramatiq",
                "--queues",
                "ingest",
                "--processes",
                "1",
                "--threads",
                str(settings.INGEST_WORKER_THREADS),
            ],
            "worker:gpu": [*manage, "rundramatiq", "--queues", "gpu", "--processes", "1", "--threads", "1"],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "expertsite.settings.dev"),
        }
        for name, cmd in children.items():
            # Own process groups, so Ctrl-C reaches us once and we stop each child in order.
            procs[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(f"expertsite is up: http://{host}:{port}/  (Ctrl-C stops it)"))
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the rest")
                        stopping = True
                time.sleep(0.5)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            for proc in procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            self.stdout.write("stopped")
