"""python manage.py ask QUESTION (--expert SLUG | --collection SLUG) [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404

from chat.generation import GenerationError
from chat.models import Expert, Mode
from chat.pipeline import answer_collect, answer_prepare
from chat.prompting import citations_for
from chat.selectors import get_expert_for_user
from knowledge.management.commands._common import resolve_collection, resolve_user


class Command(BaseCommand):
    help = "Ask an expert (or an ad-hoc RAG expert over one collection) through the chat pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--expert", help="expert slug")
        which.add_argument("--collection", help="collection slug: ask an ad-hoc RAG expert over it")
        parser.add_argument("--team", help="team slug for --collection")
        parser.add_argument("--user", help="ask as this user (access checked as for them)")
        parser.add_argument("--mode", choices=[m.value for m in Mode], help="override the expert's mode")
        parser.add_argument("--json", action="store_true", help="end with one JSON line")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = resolve_user(opts["user"])
        expert = self._expert(opts, user)
        try:
            prepared = answer_prepare(expert=expert, question=opts["question"], mode=opts["mode"])
            on_piece = None if opts["json"] else self._echo
            answer = answer_collect(prepared, on_piece=on_piece)
        except GenerationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        citations = [
            {
                "n": c["n"],
                "document": c["document"],
                "source": c["source"],
                "page": c["page"],
                "section": c["section"],
                "cited": c["cited"],
            }
            for c in citations_for(prepared.passages or [], answer.text)
        ]
        if opts["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "answer": answer.text.strip(),
                        "citations": citations,
                        "ttft_ms": round(answer.ttft_ms, 1),
                        "tokens": answer.stats.tokens,
                        "tokens_per_s": round(answer.tokens_per_s, 1) if answer.tokens_per_s else None,
                    }
                )
            )
            return
        self.stdout.write("")
        for c in citations:
            where = f"page {c['page']}" if c["page"] else c["section"]
            self.stdout.write(f"[{c['n']}]{'*' if c['cited'] else ' '} {c['source']} — {where}")
        rate = f"{answer.tokens_per_s:.1f} tokens/s" if answer.tokens_per_s else "-"
        self.stdout.write(f"ttft {answer.ttft_ms:.0f} ms, {answer.stats.tokens} tokens, {rate}")

    def _echo(self, piece: str) -> None:
        self.stdout.write(piece, ending="")
        self.stdout.flush()

    def _expert(self, opts: dict[str, Any], user: Any) -> Expert:
        if opts["expert"]:
            try:
                if user is not None:
                    return get_expert_for_user(user, opts["expert"])
                return Expert.objects.get(slug=opts["expert"])
            except (Http404, Expert.DoesNotExist):
                raise CommandError(f"No expert '{opts['expert']}'") from None
        collection = resolve_collection(slug=opts["collection"], team_slug=opts["team"], user=user)
        # An unsaved expert with default settings: nothing is stored for an ad-hoc question.
        expert = Expert(
            team=collection.team,
            name=f"ad-hoc {collection.slug}",
            slug="",
            base_model=settings.DEFAULT_BASE_MODEL,
            mode=Mode.RAG,
        )
        expert._adhoc_collections = [collection]  # type: ignore[attr-defined]
        return expert
