from __future__ import annotations

from django.apps import AppConfig


class ExpertsiteConfig(AppConfig):
    name = "expertsite"
    verbose_name = "expertsite"

    def ready(self) -> None:
        import dramatiq
        from django.conf import settings

        # A worker started without --queues consumes the queues declared on its broker;
        # declaring ours up front means such a worker serves all of them from boot.
        broker = dramatiq.get_broker()
        for queue in settings.WORKER_QUEUES:
            broker.declare_queue(queue)
