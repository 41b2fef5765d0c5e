"""Writes to the knowledge base: upload, index, re-index, delete.

The page, the HTTP API and `manage.py ingest` all come through `document_upload`;
the `ingest` worker (or the CLI inline) runs `document_index`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Team

from .chunking import ChunkDraft, chunk_blocks, minilm_token_counter
from .embedding import embed_texts
from .models import Chunk, Collection, Document, DocumentStatus
from .parsing import SUPPORTED_EXTENSIONS, ParseError, parse_document
from .progress import document_status_push

log = logging.getLogger(__name__)

UploadStatus = Literal["queued", "skipped", "rejected"]
# A claim older than this belongs to a worker that died mid-document (the actor's own
# time limit is shorter), so another worker may take the document over.
CLAIM_TIMEOUT = timedelta(minutes=15)


class DocumentBusy(Exception):
    """Another worker holds a live claim on the document; retry later."""


@dataclass
class UploadOutcome:
    source_path: str
    status: UploadStatus
    document: Document | None = None
    error: str = ""


@dataclass
class IndexOutcome:
    document_id: int
    status: str
    chunks: int = 0
    error: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def collection_create(*, team: Team, name: str, slug: str = "", description: str = "") -> Collection:
    return Collection.objects.create(
        team=team, name=name, slug=slug or slugify(name)[:60], description=description
    )


def _normalized_source_path(source_path: str) -> str:
    # Keep the uploader's relative folders, never an absolute path or a "..".
    parts = [p for p in PurePosixPath(source_path.replace("\\", "/")).parts if p not in ("/", "..", ".")]
    return "/".join(parts)[:500] or "upload"


def upload_precheck(*, name: str, size: int) -> str:
    """The reason an upload is refused before anything is stored, or ''."""
    ext = PurePosixPath(name).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(none)"
        return f"Unsupported file type '{shown}': upload PDF, DOCX, HTML, Markdown, TXT or CSV."
    if size == 0:
        return "The file is empty."
    if size > settings.MAX_UPLOAD_MB * 1024 * 1024:
        return (
            f"The file is {size / 1024 / 1024:.1f} MB, over the {settings.MAX_UPLOAD_MB} MB limit "
            "(MAX_UPLOAD_MB)."
        )
    return ""


def document_upload(
    *,
    collection: Collection,
    data: bytes,
    source_path: str,
    uploaded_by: User | None = None,
    enqueue: bool = True,
) -> UploadOutcome:
    """Store one file and queue it for indexing.

    The same bytes already in the collection are skipped. Other bytes under a source
    path already known become the next version of that document: its old chunks keep
    answering searches until the new ones replace them in one transaction.
    """
    path = _normalized_source_path(source_path)
    reason = upload_precheck(name=path, size=len(data))
    if reason:
        return UploadOutcome(source_path=path, status="rejected", error=reason)
    sha = hashlib.sha256(data).hexdigest()
    same = Document.objects.filter(collection=collection, sha256=sha).first()
    if same is not None:
        return UploadOutcome(source_path=path, status="skipped", document=same)

    with transaction.atomic():
        document = (
            Document.objects.select_for_update().filter(collection=collection, source_path=path).first()
        )
        old_file = document.file.name if document else ""
        if document is None:
            document = Document(collection=collection, source_path=path, version=1)
        else:
            document.version += 1
        document.title = document.title or PurePosixPath(path).stem
        document.sha256 = sha
        document.size = len(data)
        document.status = DocumentStatus.QUEUED
        document.error = ""
        document.claimed_at = None
        document.uploaded_by = uploaded_by if uploaded_by and uploaded_by.is_authenticated else None
        document.file.save(PurePosixPath(path).name, ContentFile(data), save=False)
        document.save()
        if old_file and old_file != document.file.name:
            name = old_file
            transaction.on_commit(lambda: document.file.storage.delete(name))
        if enqueue:
            _enqueue_index(document)
    document_status_push(document)
    return UploadOutcome(source_path=path, status="queued", document=document)


def _enqueue_index(document: Document) -> None:
    from .tasks import document_index_task

    doc_id = document.pk
    # Only once the row is committed can the worker see it.
    transaction.on_commit(lambda: document_index_task.send(doc_id))


def document_reindex(*, document: Document) -> Document:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.QUEUED, error="", claimed_at=None
        )
        _enqueue_index(document)
    document.refresh_from_db()
    document_status_push(document)
    return document


def document_delete(*, document: Document) -> None:
    name = document.file.name or ""
    storage = document.file.storage
    with transaction.atomic():
        document.delete()
        transaction.on_commit(lambda: storage.delete(name))
    document.pk = document.pk or 0
    document_status_push(document, deleted=True)


def _claim(document_id: int) -> Document | None:
    """Compare-and-swap: queued (or abandoned by a dead worker) -> parsing."""
    now = timezone.now()
    claimable = Q(status=DocumentStatus.QUEUED) | Q(
        status__in=[DocumentStatus.PARSING, DocumentStatus.EMBEDDING], claimed_at__lt=now - CLAIM_TIMEOUT
    )
    taken = Document.objects.filter(claimable, pk=document_id).update(
        status=DocumentStatus.PARSING, claimed_at=now, error=""
    )
    if not taken:
        return None
    return Document.objects.select_related("collection").get(pk=document_id)


def _set_status(document: Document, status: DocumentStatus, **fields: object) -> None:
    document.status = status
    for name, value in fields.items():
        setattr(document, name, value)
    Document.objects.filter(pk=document.pk).update(status=status, **fields)
    document_status_push(document)


def _fail(document: Document, reason: str) -> None:
    _set_status(document, DocumentStatus.FAILED, error=reason, claimed_at=None)


def document_index(*, document_id: int) -> IndexOutcome:
    """Parse, chunk, embed and store one document; idempotent and safe to retry."""
    outcome = documents_index(document_ids=[document_id])[0]
    if outcome.status == "busy":
        raise DocumentBusy(outcome.error)
    return outcome


@dataclass
class _Prepared:
    document: Document
    drafts: list[ChunkDraft]
    title: str
    started: float
    timings: dict[str, float]


def documents_index(*, document_ids: Sequence[int]) -> list[IndexOutcome]:
    """Index several documents with one embedding call for all their chunks.

    Each document is claimed, parsed, failed and stored on its own (a broken file fails
    alone, each swap is its own transaction); only the encode is shared, because
    MiniLM on CPU runs at half speed on one document's handful of chunks.
    Outcomes come back in the order of `document_ids`; a document another worker holds
    comes back as "busy".
    """
    outcomes: dict[int, IndexOutcome] = {}
    prepared: list[_Prepared] = []
    for document_id in document_ids:
        ready = _prepare(document_id)
        if isinstance(ready, IndexOutcome):
            outcomes[document_id] = ready
        else:
            prepared.append(ready)
    if prepared:
        t = time.perf_counter()
        try:
            vectors = embed_texts([d.embedding_text for p in prepared for d in p.drafts]).tolist()
        except Exception as exc:
            log.exception("embedding documents %s failed", [p.document.pk for p in prepared])
            for p in prepared:
                _fail(p.document, _unexpected(exc))
            raise
        total = sum(len(p.drafts) for p in prepared)
        embed_seconds = time.perf_counter() - t
        offset = 0
        for p in prepared:
            n = len(p.drafts)
            p.timings["embed"] = embed_seconds * n / total
            outcomes[p.document.pk] = _store(p, vectors[offset : offset + n])
            offset += n
    return [outcomes[document_id] for document_id in document_ids]


def documents_index_queued_with(document_id: int) -> IndexOutcome:
    """Index `document_id` together with other queued documents, up to one embedding batch.

    The other documents' own queue messages then find them ready and do nothing.
    """
    companions = list(
        Document.objects.filter(status=DocumentStatus.QUEUED)
        .exclude(pk=document_id)
        .order_by("pk")
        .values_list("pk", "size")[: settings.INGEST_BATCH_DOCUMENTS - 1]
    )
    ids, budget = [document_id], settings.INGEST_BATCH_MB * 1024 * 1024
    for pk, size in companions:
        budget -= size
        if budget < 0:
            break
        ids.append(pk)
    return documents_index(document_ids=ids)[0]


def _unexpected(exc: BaseException) -> str:
    return f"Indexing failed unexpectedly ({type(exc).__name__}: {exc}); try re-indexing."


def _prepare(document_id: int) -> _Prepared | IndexOutcome:
    """Claim, parse and chunk one document, or say why it is not to be embedded now."""
    started = time.perf_counter()
    current = Document.objects.filter(pk=document_id).values_list("status", "claimed_at").first()
    if current is None:
        return IndexOutcome(document_id=document_id, status="missing")
    document = _claim(document_id)
    if document is None:
        status, claimed_at = current
        if status in (DocumentStatus.PARSING, DocumentStatus.EMBEDDING):
            return IndexOutcome(
                document_id=document_id,
                status="busy",
                error=f"document {document_id} is being indexed since {claimed_at}",
            )
        return IndexOutcome(document_id=document_id, status=status)
    document_status_push(document)
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        with document.file.open("rb") as fh:
            data = fh.read()
        parsed = parse_document(data=data, filename=document.source_path)
        timings["parse"] = time.perf_counter() - t
        t = time.perf_counter()
        drafts = chunk_blocks(
            blocks=parsed.blocks,
            count_tokens=minilm_token_counter(settings.EMBEDDING_MODEL_PATH),
            max_tokens=settings.CHUNK_TOKENS,
            overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
        )
        timings["chunk"] = time.perf_counter() - t
        if not drafts:
            raise ParseError("No extractable text: the file holds no passages to index.")
        _set_status(
            document, DocumentStatus.EMBEDDING, page_count=parsed.page_count, media_type=parsed.media_type
        )
    except ParseError as exc:
        _fail(document, exc.reason)
        return IndexOutcome(
            document_id=document_id, status="failed", error=exc.reason, seconds=time.perf_counter() - started
        )
    except Exception as exc:
        # A parser bug on one file must not sink the other documents of the batch.
        log.exception("indexing document %s failed", document_id)
        _fail(document, _unexpected(exc))
        return IndexOutcome(
            document_id=document_id,
            status="failed",
            error=_unexpected(exc),
            seconds=time.perf_counter() - started,
        )
    return _Prepared(document=document, drafts=drafts, title=parsed.title, started=started, timings=timings)


def _store(p: _Prepared, vectors: list[list[float]]) -> IndexOutcome:
    document = p.document
    t = time.perf_counter()
    try:
        _replace_chunks(document, p.drafts, vectors, title=p.title)
    except DocumentBusy as exc:
        return IndexOutcome(document_id=document.pk, status="busy", error=str(exc))
    except Exception as exc:
        log.exception("storing document %s failed", document.pk)
        _fail(document, _unexpected(exc))
        raise
    p.timings["store"] = time.perf_counter() - t
    document_status_push(document)
    return IndexOutcome(
        document_id=document.pk,
        status="ready",
        chunks=len(p.drafts),
        seconds=time.perf_counter() - p.started,
        timings=p.timings,
    )


def _replace_chunks(
    document: Document, drafts: list[ChunkDraft], vectors: list[list[float]], *, title: str
) -> None:
    # One transaction: a search sees the old version's chunks or the new one's, never half.
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document.pk)
        if locked.claimed_at != document.claimed_at:
            raise DocumentBusy(f"document {document.pk} was claimed by another worker meanwhile")
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create(
            [
                Chunk(
                    document_id=document.pk,
                    collection_id=document.collection_id,
                    ordinal=i,
                    text=d.text,
                    heading_path=" > ".join(d.heading_path),
                    page=d.page,
                    token_count=d.token_count,
                    embedding=v,
                )
                for i, (d, v) in enumerate(zip(drafts, vectors, strict=True))
            ],
            batch_size=500,
        )
        now = timezone.now()
        fields = {
            "status": DocumentStatus.READY,
            "chunk_count": len(drafts),
            "indexed_at": now,
            "claimed_at": None,
            "error": "",
            "title": title[:300] or document.title,
        }
        Document.objects.filter(pk=document.pk).update(**fields)
        for name, value in fields.items():
            setattr(document, name, value)


def documents_requeue_abandoned() -> int:
    """Queue again documents a dead worker left half-done (called when a worker boots)."""
    stale = Document.objects.filter(
        status__in=[DocumentStatus.PARSING, DocumentStatus.EMBEDDING],
        claimed_at__lt=timezone.now() - CLAIM_TIMEOUT,
    )
    count = 0
    for document in stale:
        document_reindex(document=document)
        count += 1
    return count
