from __future__ import annotations

from django.urls import URLPattern, URLResolver

from knowledge.routing import websocket_urlpatterns as knowledge_ws

websocket_urlpatterns: list[URLPattern | URLResolver] = [*knowledge_ws]
