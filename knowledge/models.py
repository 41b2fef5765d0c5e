"""What the chat can know: collections of team documents, cut into embedded passages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from accounts.models import Team

from .querysets import ChunkQuerySet


class Collection(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="collection_unique_team_slug")]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.slug}"


class DocumentStatus(models.TextChoices):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    READY = "ready"
    FAILED = "failed"


def _upload_to(document: Document, filename: str) -> str:
    return f"knowledge/{document.collection_id}/{document.sha256[:2]}/{document.sha256}/{filename}"


class Document(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    file = models.FileField(upload_to=_upload_to, max_length=500)
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField()
    version = models.PositiveIntegerField(default=1)
    # The path as the uploader gave it (a folder drop keeps its relative path): a
    # document's identity within its collection, so a new upload of it is a new version.
    source_path = models.CharField(max_length=500)
    status = models.CharField(
        max_length=10, choices=DocumentStatus.choices, default=DocumentStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # When the current indexing attempt was claimed; a stale claim marks a crashed worker.
    claimed_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source_path"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "source_path"], name="document_unique_collection_path"
            )
        ]
        indexes = [models.Index(fields=["collection", "sha256"], name="document_collection_sha")]

    def __str__(self) -> str:
        return self.title or self.source_path


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalized from the document so retrieval filters on one table.
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.TextField(blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)
    search = models.GeneratedField(
        expression=SearchVector("heading_path", "text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    objects = ChunkQuerySet.as_manager()

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_document_ordinal")
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search"], name="chunk_search_gin"),
            models.Index(fields=["collection"], name="chunk_collection"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
