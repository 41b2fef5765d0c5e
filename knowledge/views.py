from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.selectors import role_at_least, team_list_for_user, team_role_for_user

from .models import Collection
from .selectors import collection_list_for_user, get_collection_for_user, get_document_for_user
from .services import collection_create


@login_required
def collection_list(request: HttpRequest) -> HttpResponse:
    editable_teams = [
        t
        for t in team_list_for_user(user=request.user)
        if role_at_least(team_role_for_user(user=request.user, team=t), Role.EDITOR)
    ]
    if request.method == "POST":
        team = next((t for t in editable_teams if str(t.pk) == request.POST.get("team")), None)
        name = request.POST.get("name", "").strip()
        if team is None or not name:
            messages.error(request, "Pick one of your teams and give the collection a name.")
        else:
            try:
                c = collection_create(team=team, name=name, description=request.POST.get("description", ""))
                return redirect("knowledge:collection", pk=c.pk)
            except IntegrityError:
                messages.error(request, f"{team.name} already has a collection with that name.")
    collections = collection_list_for_user(user=request.user).prefetch_related("documents")
    return render(
        request,
        "knowledge/collection_list.html",
        {"collections": collections, "editable_teams": editable_teams},
    )


@login_required
def collection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    collection = get_collection_for_user(request.user, pk)
    can_edit = role_at_least(team_role_for_user(user=request.user, team=collection.team), Role.EDITOR)
    return render(
        request,
        "knowledge/collection.html",
        {
            "collection": collection,
            "documents": collection.documents.all(),
            "can_edit": can_edit,
        },
    )


@login_required
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The document as its passages, each with an anchor a citation can point at."""
    document = get_document_for_user(request.user, pk)
    return render(
        request,
        "knowledge/document.html",
        {
            "document": document,
            "chunks": document.chunks.order_by("ordinal"),
        },
    )


@login_required
def document_file(request: HttpRequest, pk: int) -> FileResponse:
    document = get_document_for_user(request.user, pk)
    inline = document.media_type in ("application/pdf", "text/plain")
    return FileResponse(
        document.file.open("rb"),
        as_attachment=not inline,
        filename=document.source_path.rsplit("/", 1)[-1],
        content_type=document.media_type or None,
    )


@login_required
@require_POST
def collection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        collection: Collection = get_collection_for_user(request.user, pk, write=True)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from None
    collection.delete()
    messages.success(request, f"Deleted collection {collection.name}.")
    return redirect("knowledge:collections")
