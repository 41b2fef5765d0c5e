from __future__ import annotations

from django.urls import URLPattern, URLResolver

from chat.routing import websocket_urlpatterns as chat_ws
from knowledge.routing import websocket_urlpatterns as knowledge_ws
from training.routing import websocket_urlpatterns as training_ws

websocket_urlpatterns: list[URLPattern | URLResolver] = [*chat_ws, *knowledge_ws, *training_ws]
