"""python manage.py ingest PATH... --collection SLUG [--team SLUG] [--json]"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Team
from knowledge.models import Collection
from knowledge.parsing import SUPPORTED_EXTENSIONS
from knowledge.services import collection_create, document_upload, documents_index

from ._common import resolve_collection, resolve_user


def _expand(paths: list[str]) -> list[tuple[Path, str]]:
    """Files with the source path each is stored under: relative to a given folder."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    found.append((f, f"{p.name}/{f.relative_to(p).as_posix()}"))
        elif p.is_file():
            found.append((p, p.name))
        else:
            raise CommandError(f"no such file or folder: {raw}")
    return found


class Command(BaseCommand):
    help = "Add files and folders (recursively) to a collection and index them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--collection", required=True, help="collection slug")
        parser.add_argument("--team", help="team slug, when several teams use the slug")
        parser.add_argument("--user", help="act as this user (access checked as for them)")
        parser.add_argument(
            "--create", action="store_true", help="create the collection in --team if it does not exist"
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="hand indexing to the ingest workers instead of indexing here",
        )
        parser.add_argument("--json", action="store_true", help="end with one JSON summary line")

    def handle(self, *args: Any, **opts: Any) -> None:
        started = time.perf_counter()
        user = resolve_user(opts["user"])
        if opts["create"] and not Collection.objects.filter(slug=opts["collection"]).exists():
            team = Team.objects.filter(slug=opts["team"] or "").first()
            if team is None:
                raise CommandError("--create needs an existing --team")
            collection_create(team=team, name=opts["collection"], slug=opts["collection"])
        collection = resolve_collection(
            slug=opts["collection"], team_slug=opts["team"], user=user, write=True
        )
        files = _expand(opts["paths"])
        summary: dict[str, Any] = {"documents": 0, "skipped": 0, "failed": [], "chunks": 0}
        pending: list[tuple[int, Path, str]] = []
        for path, source in files:
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS and path.name != source:
                continue  # a folder's other files (images, archives) are not documents
            outcome = document_upload(
                collection=collection,
                data=path.read_bytes(),
                source_path=source,
                uploaded_by=user,
                enqueue=opts["queue"],
            )
            if outcome.status == "rejected":
                summary["failed"].append({"path": str(path), "error": outcome.error})
                self._line(opts, f"failed   {source}: {outcome.error}")
                continue
            if outcome.status == "skipped":
                summary["skipped"] += 1
                self._line(opts, f"skipped  {source} (same bytes already in the collection)")
                continue
            assert outcome.document is not None
            if opts["queue"]:
                summary["documents"] += 1
                self._line(opts, f"queued   {source}")
                continue
            pending.append((outcome.document.pk, path, source))
            if len(pending) >= settings.INGEST_BATCH_DOCUMENTS:
                self._index(pending, summary, opts)
                pending = []
        self._index(pending, summary, opts)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"{summary['documents']} documents, {summary['chunks']} chunks, "
                f"{summary['skipped']} skipped, "
                f"{len(summary['failed'])} failed in {summary['seconds']}s"
            )

    def _index(
        self, pending: list[tuple[int, Path, str]], summary: dict[str, Any], opts: dict[str, Any]
    ) -> None:
        """Index uploaded documents a batch at a time: one embedding call for all their chunks."""
        if not pending:
            return
        results = documents_index(document_ids=[pk for pk, _, _ in pending])
        for (_, path, source), result in zip(pending, results, strict=True):
            if result.status == "ready":
                summary["documents"] += 1
                summary["chunks"] += result.chunks
                self._line(opts, f"indexed  {source}: {result.chunks} chunks in {result.seconds:.1f}s")
            else:
                error = result.error or f"not indexed ({result.status})"
                summary["failed"].append({"path": str(path), "error": error})
                self._line(opts, f"failed   {source}: {error}")

    def _line(self, opts: dict[str, Any], text: str) -> None:
        (self.stderr if opts["json"] else self.stdout).write(text)
