"""Live document status for a collection page."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from .progress import collection_group
from .selectors import get_collection_for_user


class CollectionStatusConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        collection_id = int(self.scope["url_route"]["kwargs"]["collection_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            await database_sync_to_async(get_collection_for_user)(user, collection_id)
        except Http404:
            await self.close(code=4404)
            return
        self.group = collection_group(collection_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def document_status(self, event: dict[str, Any]) -> None:
        await self.send_json({k: v for k, v in event.items() if k != "type"} | {"type": "document"})
