"""The chat page and the citation links in it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from knowledge.models import Chunk
from knowledge.selectors import get_document_for_user

from .selectors import conversation_list_for_user, expert_list_for_user, get_conversation_for_user

CONVERSATIONS_SHOWN = 50


@login_required
def chat_page(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    """The chat UI; the conversation itself streams over the websocket (chat/consumers.py)."""
    conversation = (
        get_conversation_for_user(request.user, conversation_id) if conversation_id is not None else None
    )
    return render(
        request,
        "chat/chat.html",
        {
            "experts": expert_list_for_user(user=request.user),
            "conversations": conversation_list_for_user(user=request.user).order_by("-updated")[
                :CONVERSATIONS_SHOWN
            ],
            "conversation": conversation,
            # Not "messages": base.html renders that name as django.contrib.messages.
            "chat_messages": conversation.messages.all() if conversation is not None else [],
        },
    )


@login_required
def citation_redirect(request: HttpRequest, chunk_id: int) -> HttpResponseRedirect:
    """A citation names a chunk; the document page anchors passages by ordinal."""
    found = Chunk.objects.filter(pk=chunk_id).values_list("document_id", "ordinal").first()
    if found is None:
        # Re-indexing replaces a document's chunks, so old citations can point at none.
        raise Http404("No such passage")
    document_id, ordinal = found
    document = get_document_for_user(request.user, document_id)
    return HttpResponseRedirect(f"{reverse('knowledge:document', args=[document.pk])}#p{ordinal}")
