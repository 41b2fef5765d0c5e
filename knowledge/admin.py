from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Chunk, Collection, Document
from .services import document_delete, document_reindex


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "created"]
    list_filter = ["team"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["source_path", "collection", "status", "version", "chunk_count", "page_count", "updated"]
    list_filter = ["status", "collection__team", "collection"]
    search_fields = ["source_path", "title", "sha256"]
    readonly_fields = [
        "sha256",
        "size",
        "version",
        "status",
        "error",
        "chunk_count",
        "page_count",
        "claimed_at",
        "indexed_at",
        "created",
        "updated",
        "uploaded_by",
        "media_type",
    ]
    actions = ["reindex", "delete_with_files"]

    @admin.action(description="Re-index selected documents")
    def reindex(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            document_reindex(document=document)
        self.message_user(request, f"{queryset.count()} documents queued for indexing", messages.SUCCESS)

    @admin.action(description="Delete selected documents and their files")
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        n = 0
        for document in queryset:
            document_delete(document=document)
            n += 1
        self.message_user(request, f"{n} documents deleted", messages.SUCCESS)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "page", "heading_path", "token_count"]
    list_filter = ["collection"]
    search_fields = ["text", "heading_path"]
    readonly_fields = ["document", "collection", "ordinal", "text", "heading_path", "page", "token_count"]
    exclude = ["embedding"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
