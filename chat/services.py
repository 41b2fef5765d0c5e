"""Writes of the chat: experts, conversations, messages, feedback."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from accounts.models import Team
from knowledge.models import Collection

from .models import Conversation, Expert, Message, MessageStatus, Mode, Role
from .pipeline import Answer, Prepared
from .prompting import ChatMessage, citations_for


class ExpertInvalid(ValueError):
    pass


@transaction.atomic
def expert_create(
    *,
    team: Team,
    name: str,
    slug: str,
    collections: Iterable[Collection] = (),
    base_model: str = "",
    mode: str = Mode.RAG,
    **fields: object,
) -> Expert:
    collections = list(collections)
    if any(c.team_id != team.pk for c in collections):
        raise ExpertInvalid("an expert reads only collections of its own team")
    if mode in (Mode.RAG, Mode.RAG_FT) and not collections:
        raise ExpertInvalid(f"mode {mode} needs at least one collection")
    expert = Expert.objects.create(
        team=team,
        name=name,
        slug=slug,
        base_model=base_model or settings.DEFAULT_BASE_MODEL,
        mode=mode,
        **fields,
    )
    expert.collections.set(collections)
    return expert


def conversation_start(*, user: User, expert: Expert, title: str) -> Conversation:
    return Conversation.objects.create(user=user, expert=expert, title=title[:200])


def conversation_history(*, conversation: Conversation) -> list[ChatMessage]:
    """Earlier complete turns, oldest first: what a follow-up question is asked against."""
    rows = conversation.messages.exclude(status=MessageStatus.FAILED).values_list("role", "content")
    return [{"role": role, "content": content} for role, content in rows if content]


def message_record_question(*, conversation: Conversation, text: str) -> Message:
    message = Message.objects.create(
        conversation=conversation, role=Role.USER, content=text, expert=conversation.expert
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated=message.created)
    return message


def message_record_answer(
    *,
    conversation: Conversation,
    prepared: Prepared | None,
    answer: Answer | None,
    status: MessageStatus,
    error: str = "",
) -> Message:
    expert = conversation.expert
    passages = prepared.passages if prepared else None
    text = answer.text if answer else ""
    return Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        content=text,
        citations=citations_for(passages or [], text),
        expert=expert,
        base_model=expert.base_model,
        adapter=expert.adapter if prepared and prepared.request.adapter else None,
        mode=prepared.mode if prepared else expert.mode,
        status=status,
        error=error,
        ttft_ms=round(answer.ttft_ms, 1) if answer and answer.text else None,
        tokens=answer.stats.tokens if answer else 0,
        tokens_per_s=round(answer.tokens_per_s, 2) if answer and answer.tokens_per_s else None,
    )


def message_feedback_set(*, message: Message, value: int, comment: str = "") -> Message:
    if value not in (-1, 0, 1):
        raise ValueError("feedback is -1, 0 or +1")
    message.feedback = value
    message.feedback_comment = comment[:2000]
    message.save(update_fields=["feedback", "feedback_comment"])
    return message
