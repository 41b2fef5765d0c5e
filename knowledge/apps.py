from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"

    def ready(self) -> None:
        # Declare the actors in every process, so any worker can run them.
        from . import tasks  # noqa: F401
