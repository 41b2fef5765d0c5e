"""The knowledge HTTP API (upload, list, status, delete, search); schema at /api/openapi.json."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from .models import Collection, Document
from .selectors import (
    chunk_search_for_user,
    collection_list_for_user,
    get_collection_for_user,
    get_document_for_user,
)
from .services import document_delete, document_reindex, document_upload

router = Router(tags=["knowledge"])


class CollectionOut(Schema):
    id: int
    team: str
    slug: str
    name: str
    description: str
    documents: int


class DocumentOut(Schema):
    id: int
    collection: int
    title: str
    source_path: str
    status: str
    error: str
    media_type: str
    size: int
    version: int
    pages: int | None
    chunks: int
    sha256: str
    updated: datetime


class UploadResultOut(Schema):
    source_path: str
    status: str
    document: DocumentOut | None
    error: str


class SearchHitOut(Schema):
    document: int
    title: str
    source: str
    page: int | None
    section: str
    score: float
    text: str


class SearchOut(Schema):
    results: list[SearchHitOut]
    ms: float


def document_out(d: Document) -> DocumentOut:
    return DocumentOut(
        id=d.pk,
        collection=d.collection_id,
        title=d.title,
        source_path=d.source_path,
        status=d.status,
        error=d.error,
        media_type=d.media_type,
        size=d.size,
        version=d.version,
        pages=d.page_count,
        chunks=d.chunk_count,
        sha256=d.sha256,
        updated=d.updated,
    )


def _user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _collection(request: HttpRequest, pk: int, *, write: bool = False) -> Collection:
    try:
        return get_collection_for_user(request.user, pk, write=write)
    except PermissionError as exc:
        raise HttpError(403, str(exc)) from None


@router.get("/collections", response=list[CollectionOut])
def collection_list(request: HttpRequest) -> list[CollectionOut]:
    return [
        CollectionOut(
            id=c.pk,
            team=c.team.slug,
            slug=c.slug,
            name=c.name,
            description=c.description,
            documents=c.documents.count(),
        )
        for c in collection_list_for_user(user=request.user)
    ]


@router.post("/collections/{collection_id}/documents", response=list[UploadResultOut])
def document_upload_many(
    request: HttpRequest,
    collection_id: int,
    files: File[list[UploadedFile]],
    paths: Form[list[str]] = [],  # noqa: B006 - ninja copies defaults
) -> list[UploadResultOut]:
    """Upload files; `paths` (same order) keeps each file's relative path from a folder drop.

    Each file succeeds or fails alone: a bad file's reason is in its row, the others go on.
    """
    collection = _collection(request, collection_id, write=True)
    given = paths or []
    out: list[UploadResultOut] = []
    for i, upload in enumerate(files):
        source = given[i] if i < len(given) and given[i] else (upload.name or "upload")
        outcome = document_upload(
            collection=collection, data=upload.read(), source_path=source, uploaded_by=_user(request)
        )
        out.append(
            UploadResultOut(
                source_path=outcome.source_path,
                status=outcome.status,
                error=outcome.error,
                document=document_out(outcome.document) if outcome.document else None,
            )
        )
    return out


@router.get("/collections/{collection_id}/documents", response=list[DocumentOut])
def document_list(request: HttpRequest, collection_id: int, status: str | None = None) -> list[DocumentOut]:
    docs = _collection(request, collection_id).documents.all()
    if status:
        docs = docs.filter(status=status)
    return [document_out(d) for d in docs]


@router.get("/documents/{document_id}", response=DocumentOut)
def document_detail(request: HttpRequest, document_id: int) -> DocumentOut:
    return document_out(get_document_for_user(request.user, document_id))


@router.delete("/documents/{document_id}", response={204: None})
def document_remove(request: HttpRequest, document_id: int) -> Status:
    try:
        document = get_document_for_user(request.user, document_id, write=True)
    except PermissionError as exc:
        raise HttpError(403, str(exc)) from None
    document_delete(document=document)
    return Status(204, None)


@router.post("/documents/{document_id}/reindex", response=DocumentOut)
def document_reindex_one(request: HttpRequest, document_id: int) -> DocumentOut:
    try:
        document = get_document_for_user(request.user, document_id, write=True)
    except PermissionError as exc:
        raise HttpError(403, str(exc)) from None
    return document_out(document_reindex(document=document))


@router.get("/search", response=SearchOut)
def search(request: HttpRequest, q: str, collection: int | None = None, k: int = 5) -> SearchOut:
    if not q.strip():
        raise HttpError(422, "q must not be empty")
    coll = _collection(request, collection) if collection is not None else None
    result = chunk_search_for_user(user=request.user, query=q, k=min(max(k, 1), 50), collection=coll)
    return SearchOut(
        ms=round(result.embed_ms + result.sql_ms, 1),
        results=[
            SearchHitOut(
                document=h.chunk.document_id,
                title=h.chunk.document.title,
                source=h.chunk.document.source_path,
                page=h.chunk.page,
                section=h.chunk.heading_path,
                score=round(h.score, 5),
                text=h.chunk.text,
            )
            for h in result.hits
        ],
    )
