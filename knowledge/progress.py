"""Document status pushed to the collection page's websocket group as it changes."""

from __future__ import annotations

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .models import Document

log = logging.getLogger(__name__)


class DocumentStatusEvent(TypedDict):
    type: str  # channels handler name: "document.status"
    id: int
    source_path: str
    title: str
    status: str
    error: str
    chunks: int
    pages: int | None
    version: int
    deleted: bool


def collection_group(collection_id: int) -> str:
    return f"knowledge.collection.{collection_id}"


def document_status_event(document: Document, *, deleted: bool = False) -> DocumentStatusEvent:
    return {
        "type": "document.status",
        "id": document.pk,
        "source_path": document.source_path,
        "title": document.title,
        "status": document.status,
        "error": document.error,
        "chunks": document.chunk_count,
        "pages": document.page_count,
        "version": document.version,
        "deleted": deleted,
    }


def document_status_push(document: Document, *, deleted: bool = False) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            collection_group(document.collection_id), dict(document_status_event(document, deleted=deleted))
        )
    except Exception:
        log.warning("could not push status of document %s", document.pk, exc_info=True)
