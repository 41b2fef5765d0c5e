from __future__ import annotations

from django.urls import path

from .consumers import TrainingJobConsumer

websocket_urlpatterns = [
    path("ws/training/jobs/<int:job_id>/", TrainingJobConsumer.as_asgi()),
]
