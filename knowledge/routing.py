from __future__ import annotations

from django.urls import path

from .consumers import CollectionStatusConsumer

websocket_urlpatterns = [
    path("ws/knowledge/collections/<int:collection_id>/", CollectionStatusConsumer.as_asgi()),
]
