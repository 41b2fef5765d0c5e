from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import REDIS_URL, VAR_DIR, redis_backed
from .env import envstr

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A child server started by a test gets that test's MEDIA_ROOT through the environment.
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "test-media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def _redis_db(url: str, db: int) -> str:
    # Tests flush their Redis database; keep it apart from a running `make run`'s.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


# Concurrent test sessions flush Redis: each needs its own database (TEST_REDIS_DB).
REDIS_URL = _redis_db(REDIS_URL, int(envstr("TEST_REDIS_DB", "15")))
CHANNEL_LAYERS, DRAMATIQ_BROKER = redis_backed(REDIS_URL)
WORKER_HEARTBEAT_SECONDS = 1
# Static files straight from the finders: tests never run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Two test runs on one server (say, a second checkout) each need their own database.
DATABASES["default"]["TEST"] = {"NAME": envstr("TEST_DATABASE_NAME", "test_expertsite")}  # noqa: F405
