from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from .models import Conversation, Expert, Message

AnyUser = User | AnonymousUser


def expert_list_for_user(*, user: AnyUser) -> QuerySet[Expert]:
    if not user.is_authenticated:
        return Expert.objects.none()
    return Expert.objects.filter(team__memberships__user=user).select_related("team", "adapter")


def get_expert_for_user(user: AnyUser, slug: str) -> Expert:
    """The one permission-checked getter for an expert (404 hides other teams' experts)."""
    expert = expert_list_for_user(user=user).filter(slug=slug).first()
    if expert is None:
        raise Http404(f"No expert '{slug}'")
    return expert


def get_conversation_for_user(user: AnyUser, pk: int) -> Conversation:
    if not user.is_authenticated:
        raise Http404("No such conversation")
    conversation = (
        Conversation.objects.filter(pk=pk, user=user, expert__team__memberships__user=user)
        .select_related("expert")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


def get_message_for_user(user: AnyUser, pk: int) -> Message:
    if not user.is_authenticated:
        raise Http404("No such message")
    message = Message.objects.filter(
        pk=pk, conversation__user=user, conversation__expert__team__memberships__user=user
    ).first()
    if message is None:
        raise Http404("No such message")
    return message


def conversation_list_for_user(*, user: AnyUser) -> QuerySet[Conversation]:
    if not user.is_authenticated:
        return Conversation.objects.none()
    return Conversation.objects.filter(user=user, expert__team__memberships__user=user).select_related(
        "expert"
    )
