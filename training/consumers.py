"""Live progress of one training job for its page."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import TrainingJob
from .progress import JobEvent, job_event, job_group
from .selectors import get_job_for_user


def _snapshot(job: TrainingJob) -> JobEvent:
    event = job_event(job)
    # The whole history: the page may have been rendered before points it missed.
    event["last"] = job.history
    return event


class TrainingJobConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            job = await database_sync_to_async(get_job_for_user)(user, job_id)
        except PermissionDenied:
            await self.close(code=4403)
            return
        except Http404:
            await self.close(code=4404)
            return
        self.group = job_group(job_id)
        # Join before reading the snapshot, so no push falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await job.arefresh_from_db()
        await self.send_json(_frame(dict(_snapshot(job)), kind="snapshot"))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_progress(self, event: dict[str, Any]) -> None:
        await self.send_json(_frame(event, kind="progress"))


def _frame(event: dict[str, Any], *, kind: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "type"} | {"type": kind}
