"""Reads of the knowledge base; every path in checks access through these."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Role
from accounts.selectors import role_at_least, team_role_for_user

from .embedding import embed_query
from .models import Chunk, Collection, Document
from .querysets import SearchHit, SearchMode

AnyUser = User | AnonymousUser


def collection_list_for_user(*, user: AnyUser) -> QuerySet[Collection]:
    if not user.is_authenticated:
        return Collection.objects.none()
    return Collection.objects.filter(team__memberships__user=user).select_related("team")


def get_collection_for_user(user: AnyUser, pk: int, *, write: bool = False) -> Collection:
    """The one permission-checked getter for a collection (404 hides what is not yours)."""
    collection = collection_list_for_user(user=user).filter(pk=pk).first()
    if collection is None:
        raise Http404("No such collection")
    if write and not role_at_least(team_role_for_user(user=user, team=collection.team), Role.EDITOR):
        raise PermissionError("Uploading and deleting need the editor role in this team")
    return collection


def get_collection_by_slug_for_user(
    user: AnyUser, slug: str, *, team_slug: str | None = None, write: bool = False
) -> Collection:
    qs = collection_list_for_user(user=user).filter(slug=slug)
    if team_slug:
        qs = qs.filter(team__slug=team_slug)
    found = list(qs[:2])
    if not found:
        raise Http404(f"No collection '{slug}'" + (f" in team '{team_slug}'" if team_slug else ""))
    if len(found) > 1:
        raise Http404(f"Several teams have a collection '{slug}': give the team")
    return get_collection_for_user(user, found[0].pk, write=write)


def get_document_for_user(user: AnyUser, pk: int, *, write: bool = False) -> Document:
    document = Document.objects.filter(pk=pk, collection__in=collection_list_for_user(user=user)).first()
    if document is None:
        raise Http404("No such document")
    if write:
        get_collection_for_user(user, document.collection_id, write=True)
    return document


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    embed_ms: float
    sql_ms: float


def chunk_search(
    *,
    collections: list[Collection],
    query: str,
    k: int | None = None,
    document_ids: list[int] | None = None,
    mode: SearchMode = "hybrid",
) -> SearchResult:
    """Hybrid search over collections the caller has already been allowed to read."""
    t0 = time.perf_counter()
    embedding = embed_query(query) if mode != "fulltext" else None
    t1 = time.perf_counter()
    hits = Chunk.objects.hybrid_search(
        embedding=embedding,
        text=query,
        collection_ids=[c.pk for c in collections],
        document_ids=document_ids,
        k=k or settings.SEARCH_TOP_K,
        mode=mode,
        ef_search=settings.HNSW_EF_SEARCH,
        rrf_k=settings.RRF_K,
        fulltext_weight=settings.SEARCH_FULLTEXT_WEIGHT,
        fulltext_max_matches=settings.SEARCH_FULLTEXT_MAX_MATCHES,
    )
    t2 = time.perf_counter()
    return SearchResult(hits=hits, embed_ms=(t1 - t0) * 1000, sql_ms=(t2 - t1) * 1000)


def chunk_search_for_user(
    *,
    user: AnyUser,
    query: str,
    k: int | None = None,
    collection: Collection | None = None,
    document_ids: list[int] | None = None,
    mode: SearchMode = "hybrid",
) -> SearchResult:
    readable = list(collection_list_for_user(user=user))
    if collection is not None:
        readable = [c for c in readable if c.pk == collection.pk]
    return chunk_search(collections=readable, query=query, k=k, document_ids=document_ids, mode=mode)
