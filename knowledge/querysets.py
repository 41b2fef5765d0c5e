"""Retrieval SQL: pgvector kNN and PostgreSQL full text, fused by weighted reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.db import connection, models, transaction

if TYPE_CHECKING:
    from .models import Chunk

SearchMode = Literal["hybrid", "vector", "fulltext"]


@dataclass(frozen=True)
class SearchHit:
    chunk: Chunk
    score: float
    vector_rank: int | None
    fulltext_rank: int | None


def vector_literal(embedding: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in embedding) + "]"


class ChunkQuerySet(models.QuerySet["Chunk"]):
    def hybrid_search(
        self,
        *,
        embedding: Sequence[float] | None,
        text: str,
        collection_ids: Sequence[int],
        k: int,
        document_ids: Sequence[int] | None = None,
        mode: SearchMode = "hybrid",
        ef_search: int = 100,
        rrf_k: int = 60,
        fulltext_weight: float = 0.5,
        candidates: int | None = None,
        fulltext_max_matches: int = 2000,
    ) -> list[SearchHit]:
        """Top-k chunks of the given collections for a query.

        Each arm ranks its own `candidates`; the fused score is
        1/(rrf_k + vector_rank) + fulltext_weight/(rrf_k + fulltext_rank). Full text
        uses websearch_to_tsquery (AND of the words): on a question it often matches
        nothing, and then the vector ranking stands alone instead of being diluted by
        weak matches (measured: unweighted fusion with an OR query lost to vector alone).
        """
        if not collection_ids or k <= 0:
            return []
        n = candidates or max(4 * k, 20)
        doc_filter = " AND document_id = ANY(%(docs)s)" if document_ids else ""
        params: dict[str, Any] = {
            "cols": list(collection_ids),
            "docs": list(document_ids or []),
            "n": n,
            "k": k,
            "rrf": rrf_k,
            "w": fulltext_weight,
            "q": text,
        }
        use_vec = mode in ("hybrid", "vector") and embedding is not None
        use_fts = mode in ("hybrid", "fulltext") and bool(text.strip())
        vec_sql = "SELECT NULL::bigint AS id, NULL::bigint AS rank WHERE false"
        fts_sql = vec_sql
        if use_vec:
            params["e"] = vector_literal(embedding or [])
            vec_sql = f"""
                SELECT id, row_number() OVER (ORDER BY dist, id) AS rank FROM (
                    SELECT id, embedding <=> %(e)s::vector AS dist FROM knowledge_chunk
                    WHERE collection_id = ANY(%(cols)s){doc_filter}
                    ORDER BY embedding <=> %(e)s::vector LIMIT %(n)s
                ) v"""
        if use_fts:
            # Ranking is per match: a query of one frequent word matched every chunk and took
            # 360 ms at 100k. Only the first `fulltext_max_matches` the GIN index yields are
            # ranked; a word that common says little, and the vector arm carries the query.
            params["cap"] = fulltext_max_matches
            fts_sql = f"""
                SELECT id, row_number() OVER (ORDER BY r DESC, id) AS rank FROM (
                    SELECT id, ts_rank_cd(search, q) AS r FROM (
                        SELECT id, search, q
                        FROM knowledge_chunk, websearch_to_tsquery('english', %(q)s) q
                        WHERE search @@ q AND collection_id = ANY(%(cols)s){doc_filter}
                        LIMIT %(cap)s
                    ) m
                    ORDER BY r DESC LIMIT %(n)s
                ) f"""
        sql = f"""
            WITH vec AS ({vec_sql}), fts AS ({fts_sql})
            SELECT coalesce(vec.id, fts.id) AS id,
                   coalesce(1.0 / (%(rrf)s + vec.rank), 0)
                     + %(w)s * coalesce(1.0 / (%(rrf)s + fts.rank), 0) AS score,
                   vec.rank, fts.rank
            FROM vec FULL OUTER JOIN fts ON vec.id = fts.id
            ORDER BY score DESC, id LIMIT %(k)s"""
        # SET LOCAL needs a transaction; iterative scans keep HNSW filling k rows when
        # the collection filter removes most of what the graph walk finds (pgvector 0.8).
        with transaction.atomic(using=self.db), connection.cursor() as cursor:
            if use_vec:
                cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        by_id = {c.pk: c for c in self.filter(pk__in=[r[0] for r in rows]).select_related("document")}
        return [
            SearchHit(chunk=by_id[r[0]], score=float(r[1]), vector_rank=r[2], fulltext_rank=r[3])
            for r in rows
            if r[0] in by_id
        ]
