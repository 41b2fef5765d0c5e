"""/v1/chat/completions and /v1/models: an expert behind the OpenAI API, for any tool that speaks it.

`model` is the expert's slug; the bearer token is a per-user API token. Retrieved passages
come back in an extra `citations` field. The client's own system messages are dropped: the
expert's system prompt and the RAG rules are not the caller's to replace.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.selectors import user_for_api_token

from .generation import GenerationError
from .models import Conversation, Expert, MessageStatus
from .pipeline import Prepared, Streamed, answer_prepare
from .prompting import ChatMessage, citations_for
from .selectors import expert_list_for_user, get_expert_for_user
from .services import conversation_start, message_record_answer, message_record_question


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": kind, "code": code}}, status=status)


async def _user(request: HttpRequest) -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    user = await sync_to_async(user_for_api_token)(raw=header[7:].strip())
    return user if isinstance(user, User) else None


async def models(request: HttpRequest) -> HttpResponse:
    user = await _user(request)
    if user is None:
        return _error(401, "a valid API token is required (Authorization: Bearer ...)", "invalid_api_key")
    experts = await sync_to_async(lambda: list(expert_list_for_user(user=user)))()
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {
                    "id": e.slug,
                    "object": "model",
                    "created": int(e.created.timestamp()),
                    "owned_by": e.team.slug,
                }
                for e in experts
            ],
        }
    )


def _parse(body: dict[str, Any]) -> tuple[str, str, list[ChatMessage], bool, int | None, float | None]:
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not model:
        raise ValueError("model (an expert slug) is required")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    turns: list[ChatMessage] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError("each message needs a role of system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise ValueError("message content must be a string")
        if m["role"] != "system":
            turns.append({"role": m["role"], "content": content})
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise ValueError("the last message must be a non-empty user message")
    question = turns[-1]["content"]
    if len(question) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ValueError(f"the message is over {settings.CHAT_MAX_MESSAGE_CHARS} characters")
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    temperature = body.get("temperature")
    return model, question, turns[:-1], bool(body.get("stream")), max_tokens, temperature


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    if request.method != "POST":
        return _error(405, "POST only", "method_not_allowed")
    user = await _user(request)
    if user is None:
        return _error(401, "a valid API token is required (Authorization: Bearer ...)", "invalid_api_key")
    try:
        body = json.loads(request.body or b"{}")
        slug, question, history, stream, max_tokens, temperature = _parse(body)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc), "invalid_request")
    try:
        expert: Expert = await sync_to_async(get_expert_for_user)(user, slug)
    except Http404:
        return _error(
            404, f"The model '{slug}' does not exist or you do not have access to it.", "model_not_found"
        )
    try:
        prepared = await sync_to_async(answer_prepare)(expert=expert, question=question, history=history)
    except GenerationError as exc:
        return _error(400, exc.message, exc.code)
    if isinstance(max_tokens, int) and max_tokens > 0:
        prepared.request.max_new_tokens = min(max_tokens, expert.max_new_tokens * 4)
    if isinstance(temperature, int | float) and 0 <= temperature <= 2:
        prepared.request.temperature = float(temperature)
    conversation = await sync_to_async(conversation_start)(user=user, expert=expert, title=question[:80])
    await sync_to_async(message_record_question)(conversation=conversation, text=question)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if stream:
        response = StreamingHttpResponse(
            _sse(prepared, conversation, completion_id, slug), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    streamed = Streamed(prepared)
    try:
        parts = [piece async for piece in streamed.pieces()]
    except GenerationError as exc:
        await _record_failure(conversation, prepared, exc.message)
        return _error(503, exc.message, exc.code, "server_error")
    answer = streamed.answer
    text = "".join(parts)
    await sync_to_async(message_record_answer)(
        conversation=conversation, prepared=prepared, answer=answer, status=MessageStatus.COMPLETE
    )
    tokens = answer.stats.tokens if answer else 0
    return JsonResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": slug,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": _finish_reason(prepared, tokens),
                }
            ],
            "usage": {
                "prompt_tokens": answer.stats.prompt_tokens if answer else 0,
                "completion_tokens": tokens,
                "total_tokens": (answer.stats.prompt_tokens if answer else 0) + tokens,
            },
            "citations": citations_for(prepared.passages or [], text),
        }
    )


def _finish_reason(prepared: Prepared, tokens: int) -> str:
    return "length" if tokens >= prepared.request.max_new_tokens else "stop"


async def _record_failure(conversation: Conversation, prepared: Prepared, error: str) -> None:
    await sync_to_async(message_record_answer)(
        conversation=conversation, prepared=prepared, answer=None, status=MessageStatus.FAILED, error=error
    )


async def _sse(
    prepared: Prepared, conversation: Conversation, completion_id: str, slug: str
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": slug,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, citations=citations_for(prepared.passages or []))
    streamed = Streamed(prepared)
    parts: list[str] = []
    status = MessageStatus.INTERRUPTED
    try:
        async for piece in streamed.pieces():
            parts.append(piece)
            yield chunk({"content": piece})
        status = MessageStatus.COMPLETE
    except GenerationError as exc:
        status = MessageStatus.FAILED
        await _record_failure(conversation, prepared, exc.message)
        yield f"data: {json.dumps({'error': {'message': exc.message, 'code': exc.code}})}\n\n"
        return
    finally:
        # A client that goes away mid-stream cancels this generator: keep what was said.
        if status == MessageStatus.INTERRUPTED:
            streamed.stop.set()
            await sync_to_async(message_record_answer)(
                conversation=conversation, prepared=prepared, answer=streamed.answer, status=status
            )
    answer = streamed.answer
    await sync_to_async(message_record_answer)(
        conversation=conversation, prepared=prepared, answer=answer, status=status
    )
    text = "".join(parts)
    tokens = answer.stats.tokens if answer else 0
    yield chunk({}, _finish_reason(prepared, tokens), citations=citations_for(prepared.passages or [], text))
    yield "data: [DONE]\n\n"
