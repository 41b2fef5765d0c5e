"""The chat websocket. Protocol (JSON frames), documented in README.md:

client: {"type": "ask", "conversation": ID|null, "expert": SLUG, "text": ...}
        {"type": "stop"}
        {"type": "feedback", "message": ID, "value": 1|0|-1, "comment": ...}
server: conversation, queued (position), citations, token, done, feedback, error (code, message)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404

from .generation import GenerationError
from .models import Conversation, Expert, MessageStatus
from .pipeline import Prepared, Streamed, answer_prepare
from .prompting import citations_for
from .selectors import get_conversation_for_user, get_expert_for_user, get_message_for_user
from .services import (
    conversation_history,
    conversation_start,
    message_feedback_set,
    message_record_answer,
    message_record_question,
)

log = logging.getLogger(__name__)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    task: asyncio.Task[None] | None = None
    stop: threading.Event

    async def connect(self) -> None:
        self.stop = threading.Event()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with our code: a refused handshake reaches the page as a bare
            # 1006, and it could not tell "log in again" from a dropped connection.
            await self.accept()
            await self.close(code=4401)
            return
        self.user = user
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # Generation stops with the client; the partial answer is kept as interrupted.
        self.stop.set()
        if self.task is not None:
            await asyncio.shield(self.task)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kw: Any) -> None:
        try:
            frame = json.loads(text_data or "")
        except (TypeError, ValueError):
            await self.error("bad_frame", "frames are JSON objects")
            return
        if not isinstance(frame, dict):
            await self.error("bad_frame", "frames are JSON objects")
            return
        await self.receive_json(frame)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        if kind == "ask":
            if self.task is not None and not self.task.done():
                await self.error("busy", "an answer is still streaming: stop it or wait")
                return
            self.stop = threading.Event()
            self.task = asyncio.create_task(self.ask(content))
        elif kind == "stop":
            # Set before generation starts too: a stop during retrieval or in the queue counts.
            self.stop.set()
        elif kind == "feedback":
            await self.feedback(content)
        else:
            await self.error("bad_frame", f"unknown frame type {kind!r}")

    async def error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def ask(self, content: dict[str, Any]) -> None:
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            await self.error("empty_message", "the message is empty")
            return
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
            await self.error(
                "message_too_long", f"the message is over {settings.CHAT_MAX_MESSAGE_CHARS} characters"
            )
            return
        try:
            conversation, expert = await self._conversation(content)
        except Http404 as exc:
            await self.error("not_found", str(exc))
            return
        except ValueError as exc:
            await self.error("bad_frame", str(exc))
            return
        history = await database_sync_to_async(conversation_history)(conversation=conversation)
        await database_sync_to_async(message_record_question)(conversation=conversation, text=text)
        prepared: Prepared | None = None
        try:
            prepared = await database_sync_to_async(answer_prepare)(
                expert=expert, question=text, history=history
            )
            if prepared.passages is not None:
                await self.send_json({"type": "citations", "citations": citations_for(prepared.passages)})
            streamed = Streamed(prepared, stop=self.stop)
            async for piece in streamed.pieces(on_queued=self._queued):
                await self.send_json({"type": "token", "text": piece})
        except GenerationError as exc:
            await database_sync_to_async(message_record_answer)(
                conversation=conversation,
                prepared=prepared,
                answer=None,
                status=MessageStatus.FAILED,
                error=exc.message,
            )
            await self.error(exc.code, exc.message)
            return
        except Exception as exc:
            log.exception("chat answer failed")
            await database_sync_to_async(message_record_answer)(
                conversation=conversation,
                prepared=prepared,
                answer=None,
                status=MessageStatus.FAILED,
                error=str(exc),
            )
            await self.error("internal", "the answer failed; it was logged")
            return
        answer = streamed.answer
        status = MessageStatus.INTERRUPTED if answer and answer.stopped else MessageStatus.COMPLETE
        message = await database_sync_to_async(message_record_answer)(
            conversation=conversation, prepared=prepared, answer=answer, status=status
        )
        await self.send_json(
            {
                "type": "done",
                "message": message.pk,
                "conversation": conversation.pk,
                "status": status,
                "citations": message.citations,
                "ttft_ms": message.ttft_ms,
                "tokens": message.tokens,
                "tokens_per_s": message.tokens_per_s,
                "timings": answer.timings if answer else {},
            }
        )

    async def _queued(self, position: int) -> None:
        await self.send_json({"type": "queued", "position": position})

    async def _conversation(self, content: dict[str, Any]) -> tuple[Conversation, Expert]:
        conv_id = content.get("conversation")
        if conv_id is not None:
            if not isinstance(conv_id, int):
                raise ValueError("conversation must be an id or null")
            conversation = await database_sync_to_async(get_conversation_for_user)(self.user, conv_id)
            return conversation, conversation.expert
        slug = content.get("expert")
        if not isinstance(slug, str) or not slug:
            raise ValueError("expert (a slug) is required to start a conversation")
        expert = await database_sync_to_async(get_expert_for_user)(self.user, slug)
        conversation = await database_sync_to_async(conversation_start)(
            user=self.user, expert=expert, title=str(content.get("text", ""))[:80]
        )
        await self.send_json({"type": "conversation", "id": conversation.pk, "title": conversation.title})
        return conversation, expert

    async def feedback(self, content: dict[str, Any]) -> None:
        try:
            message = await database_sync_to_async(get_message_for_user)(self.user, int(content["message"]))
            value = int(content.get("value", 0))
            await database_sync_to_async(message_feedback_set)(
                message=message, value=value, comment=str(content.get("comment", ""))
            )
        except (KeyError, TypeError, ValueError) as exc:
            await self.error("bad_frame", f"feedback needs message and value (-1, 0, 1): {exc}")
            return
        except Http404 as exc:
            await self.error("not_found", str(exc))
            return
        await self.send_json({"type": "feedback", "message": message.pk, "value": value})
