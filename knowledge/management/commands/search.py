"""python manage.py search QUERY --collection SLUG [-k 5] [--json]"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from knowledge.selectors import chunk_search

from ._common import resolve_collection, resolve_user


class Command(BaseCommand):
    help = "Hybrid search (vector + full text) over one collection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query")
        parser.add_argument("--collection", required=True)
        parser.add_argument("--team")
        parser.add_argument("--user", help="search as this user (access checked as for them)")
        parser.add_argument("-k", type=int, default=5)
        parser.add_argument("--mode", choices=["hybrid", "vector", "fulltext"], default="hybrid")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        started = time.perf_counter()
        user = resolve_user(opts["user"])
        collection = resolve_collection(slug=opts["collection"], team_slug=opts["team"], user=user)
        result = chunk_search(collections=[collection], query=opts["query"], k=opts["k"], mode=opts["mode"])
        ms = round((time.perf_counter() - started) * 1000, 1)
        rows: list[dict[str, Any]] = [
            {
                "document": hit.chunk.document_id,
                "title": hit.chunk.document.title,
                "source": hit.chunk.document.source_path,
                "page": hit.chunk.page,
                "section": hit.chunk.heading_path,
                "score": round(hit.score, 5),
                "text": hit.chunk.text,
            }
            for hit in result.hits
        ]
        if opts["json"]:
            self.stdout.write(json.dumps({"results": rows, "ms": ms}))
            return
        for i, row in enumerate(rows, 1):
            where = f"p.{row['page']}" if row["page"] else str(row["section"])
            self.stdout.write(f"[{i}] {row['score']:.4f}  {row['source']}  {where}")
            self.stdout.write("    " + row["text"][:300].replace("\n", " "))
        self.stdout.write(f"{len(rows)} results in {ms} ms")
